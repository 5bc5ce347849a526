"""SQL for albums and their members; every query lives here.

Reads are async and take an `AsyncSession`; writes are plain functions of a `Connection`
run inside one `Database.write` unit. Every write is scoped by the album's owner in its
own WHERE clause, so a service that forgot a check still could not change someone
else's album. An album holds only its owner's images (`owned_images`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Album, AlbumImage, Image, Visibility


@dataclass(frozen=True, slots=True)
class StoredAlbum:
    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str | None
    visibility: str
    cover_image_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ZipMember:
    """What a download needs of one image: its name, bytes and date."""

    image_id: uuid.UUID
    filename: str
    sha256: str
    file_size: int
    created_at: datetime


_COLUMNS = (
    Album.id,
    Album.owner_id,
    Album.title,
    Album.description,
    Album.visibility,
    Album.cover_image_id,
    Album.created_at,
    Album.updated_at,
)


def _stored(row: Sequence[Any] | None) -> StoredAlbum | None:
    return None if row is None else StoredAlbum(*row)


def visible(as_owner: bool, now: datetime) -> ColumnElement[bool]:
    """The images of an album a viewer may see: never expired ones; not private ones
    unless the viewer owns the album (and so every image in it)."""
    alive = or_(Image.expires_at.is_(None), Image.expires_at > now)
    return alive if as_owner else and_(alive, Image.visibility != Visibility.PRIVATE)


# ---- reads ------------------------------------------------------------------------------


async def get_album(session: AsyncSession, album_id: uuid.UUID) -> StoredAlbum | None:
    result = await session.execute(select(*_COLUMNS).where(Album.id == album_id))
    return _stored(result.first())


async def list_albums(
    session: AsyncSession,
    owner_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[StoredAlbum]:
    """The owner's albums, newest first (ties by id), after the keyset `before`."""
    query = select(*_COLUMNS).where(Album.owner_id == owner_id)
    if before is not None:
        created_at, album_id = before
        query = query.where(
            Album.created_at <= created_at,
            or_(
                Album.created_at < created_at,
                and_(Album.created_at == created_at, Album.id < album_id),
            ),
        )
    result = await session.execute(
        query.order_by(Album.created_at.desc(), Album.id.desc()).limit(limit)
    )
    return [StoredAlbum(*row) for row in result]


async def image_counts(
    session: AsyncSession, album_ids: Sequence[uuid.UUID], as_owner: bool, now: datetime
) -> dict[uuid.UUID, int]:
    """How many images of each album the viewer may see (absent: none)."""
    if not album_ids:
        return {}
    result = await session.execute(
        select(AlbumImage.album_id, func.count())
        .join(Image, Image.id == AlbumImage.image_id)
        .where(AlbumImage.album_id.in_(album_ids), visible(as_owner, now))
        .group_by(AlbumImage.album_id)
    )
    return {album_id: int(count) for album_id, count in result}


async def visible_images(
    session: AsyncSession, image_ids: Sequence[uuid.UUID], as_owner: bool, now: datetime
) -> set[uuid.UUID]:
    """Those of `image_ids` the viewer may see (an album's covers)."""
    if not image_ids:
        return set()
    result = await session.execute(
        select(Image.id).where(Image.id.in_(image_ids), visible(as_owner, now))
    )
    return set(result.scalars())


async def member_page(
    session: AsyncSession,
    album_id: uuid.UUID,
    as_owner: bool,
    now: datetime,
    after: int | None,
    limit: int,
) -> list[tuple[int, uuid.UUID]]:
    """(position, image id) of the album's visible images after position `after`, in
    album order."""
    query = (
        select(AlbumImage.position, AlbumImage.image_id)
        .join(Image, Image.id == AlbumImage.image_id)
        .where(AlbumImage.album_id == album_id, visible(as_owner, now))
    )
    if after is not None:
        query = query.where(AlbumImage.position > after)
    result = await session.execute(query.order_by(AlbumImage.position).limit(limit))
    return [(position, image_id) for position, image_id in result]


async def zip_members(
    session: AsyncSession, album_id: uuid.UUID, as_owner: bool, now: datetime
) -> list[ZipMember]:
    """Every visible image of the album, in album order, as a download needs it."""
    result = await session.execute(
        select(Image.id, Image.filename, Image.blob_sha256, Image.file_size, Image.created_at)
        .join(AlbumImage, AlbumImage.image_id == Image.id)
        .where(AlbumImage.album_id == album_id, visible(as_owner, now))
        .order_by(AlbumImage.position)
    )
    return [ZipMember(*row) for row in result]


# ---- writes (inside Database.write) -----------------------------------------------------


def insert_album(
    connection: Connection,
    owner_id: uuid.UUID,
    title: str,
    description: str | None,
    visibility: str,
    now: datetime,
) -> StoredAlbum:
    album_id = uuid.uuid4()
    connection.execute(
        insert(Album).values(
            id=album_id,
            owner_id=owner_id,
            title=title,
            description=description,
            visibility=visibility,
            cover_image_id=None,
            created_at=now,
            updated_at=now,
        )
    )
    return StoredAlbum(album_id, owner_id, title, description, visibility, None, now, now)


def lock_album(connection: Connection, album_id: uuid.UUID) -> StoredAlbum | None:
    """The album, its row locked until the unit ends: its changes happen one at a time."""
    result = connection.execute(select(*_COLUMNS).where(Album.id == album_id).with_for_update())
    return _stored(result.first())


def update_album(
    connection: Connection,
    album_id: uuid.UUID,
    owner_id: uuid.UUID,
    values: dict[str, Any],
    now: datetime,
) -> StoredAlbum | None:
    """Change the owner's album; None when it is not theirs."""
    result = connection.execute(
        update(Album)
        .where(Album.id == album_id, Album.owner_id == owner_id)
        .values(**values, updated_at=now)
        .returning(*_COLUMNS)
    )
    return _stored(result.first())


def delete_album(connection: Connection, album_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
    """Remove the owner's album and its membership rows (the images stay)."""
    result = connection.execute(
        delete(Album).where(Album.id == album_id, Album.owner_id == owner_id)
    )
    return bool(result.rowcount)


def member_ids(connection: Connection, album_id: uuid.UUID) -> list[uuid.UUID]:
    """Every image of the album, in album order."""
    result = connection.execute(
        select(AlbumImage.image_id)
        .where(AlbumImage.album_id == album_id)
        .order_by(AlbumImage.position)
    )
    return list(result.scalars())


def is_member(connection: Connection, album_id: uuid.UUID, image_id: uuid.UUID) -> bool:
    """Whether the image is in the album; the membership row stays until the unit ends
    (an image deleted meanwhile waits, then takes the cover with it)."""
    result = connection.execute(
        select(AlbumImage.image_id)
        .where(AlbumImage.album_id == album_id, AlbumImage.image_id == image_id)
        .with_for_update(read=True)
    )
    return result.first() is not None


def owned_images(
    connection: Connection, owner_id: uuid.UUID, image_ids: Sequence[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """Those of `image_ids` that are the owner's and have not expired, kept until the
    unit ends (a delete meanwhile waits, then takes the new membership rows with it)."""
    found: set[uuid.UUID] = set()
    for start in range(0, len(image_ids), 500):  # bounded IN lists
        result = connection.execute(
            select(Image.id)
            .where(
                Image.id.in_(image_ids[start : start + 500]),
                Image.owner_id == owner_id,
                visible(True, now),
            )
            .with_for_update(read=True)
        )
        found.update(result.scalars())
    return found


def _owned_album(album_id: uuid.UUID, owner_id: uuid.UUID) -> ColumnElement[bool]:
    return AlbumImage.album_id.in_(
        select(Album.id).where(Album.id == album_id, Album.owner_id == owner_id)
    )


def replace_members(
    connection: Connection,
    album_id: uuid.UUID,
    owner_id: uuid.UUID,
    image_ids: Sequence[uuid.UUID],
    now: datetime,
) -> list[uuid.UUID]:
    """Make `image_ids` (distinct, the owner's) the album's images in this order; members
    that stay keep when they were added. The members before."""
    added_at = dict(
        connection.execute(
            select(AlbumImage.image_id, AlbumImage.added_at).where(_owned_album(album_id, owner_id))
        ).all()
    )
    connection.execute(delete(AlbumImage).where(_owned_album(album_id, owner_id)))
    _insert_members(connection, album_id, image_ids, 0, now, added_at)
    return list(added_at)


def append_members(
    connection: Connection,
    album_id: uuid.UUID,
    owner_id: uuid.UUID,
    image_ids: Sequence[uuid.UUID],
    now: datetime,
) -> None:
    """Add `image_ids` (distinct, the owner's, not yet members) after the last member."""
    last = connection.execute(
        select(func.max(AlbumImage.position)).where(_owned_album(album_id, owner_id))
    ).scalar_one_or_none()
    _insert_members(connection, album_id, image_ids, 0 if last is None else last + 1, now, {})


def _insert_members(
    connection: Connection,
    album_id: uuid.UUID,
    image_ids: Sequence[uuid.UUID],
    first: int,
    now: datetime,
    added_at: dict[uuid.UUID, datetime],
) -> None:
    if not image_ids:
        return
    connection.execute(
        insert(AlbumImage),
        [
            {
                "album_id": album_id,
                "image_id": image_id,
                "position": first + offset,
                "added_at": added_at.get(image_id, now),
            }
            for offset, image_id in enumerate(image_ids)
        ],
    )


def remove_member(
    connection: Connection, album_id: uuid.UUID, owner_id: uuid.UUID, image_id: uuid.UUID
) -> bool:
    result = connection.execute(
        delete(AlbumImage).where(_owned_album(album_id, owner_id), AlbumImage.image_id == image_id)
    )
    return bool(result.rowcount)


def members_changed(
    connection: Connection, album_id: uuid.UUID, owner_id: uuid.UUID, now: datetime
) -> StoredAlbum | None:
    """After a membership change: the album's `updated_at` moves, and a cover that left
    the album goes. The album as it now is."""
    members = select(AlbumImage.image_id).where(AlbumImage.album_id == album_id)
    cover = case((Album.cover_image_id.in_(members), Album.cover_image_id), else_=None)
    return update_album(connection, album_id, owner_id, {"cover_image_id": cover}, now)
