"""SQL for images, blobs and idempotency records; every query lives here.

Reads are async and take an `AsyncSession`. Writes are plain functions of a
`Connection`: they run inside one `Database.write` unit of work, which holds the write
lock (SQLite) or the row locks (PostgreSQL) for exactly that unit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.images.cache import RECORD_COLUMNS, CachedImage, record_of, tags_json_of
from app.models import AlbumImage, Blob, IdempotencyRecord, Image, Thumbnail, ThumbnailStatus
from app.models.base import utcnow

# ---- reads ------------------------------------------------------------------------------


async def get_image(session: AsyncSession, image_id: uuid.UUID) -> CachedImage | None:
    """The image with its blob's thumbnails (none until made), in one query."""
    result = await session.execute(
        select(Image, Thumbnail)
        .outerjoin(Thumbnail, Thumbnail.blob_sha256 == Image.blob_sha256)
        .where(Image.id == image_id)
    )
    rows = result.all()
    if not rows:
        return None
    image = rows[0][0]
    album_ids = (
        (await albums_holding(session, [image_id])).get(image_id, []) if image.owner_id else []
    )
    return record_of(
        image, [thumbnail for _, thumbnail in rows if thumbnail is not None], album_ids
    )


async def albums_holding(
    session: AsyncSession, image_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The albums holding each of `image_ids` (an image is only in its owner's albums)."""
    if not image_ids:
        return {}
    result = await session.execute(
        select(AlbumImage.image_id, AlbumImage.album_id)
        .where(AlbumImage.image_id.in_(image_ids))
        .order_by(AlbumImage.added_at, AlbumImage.album_id)
    )
    holding: dict[uuid.UUID, list[uuid.UUID]] = {}
    for image_id, album_id in result:
        holding.setdefault(image_id, []).append(album_id)
    return holding


async def records_of(session: AsyncSession, images: Sequence[Image]) -> list[CachedImage]:
    """The records of `images`, in order, with their thumbnails and albums (two queries)."""
    blobs = {image.blob_sha256 for image in images}
    thumbnails: dict[str, list[Thumbnail]] = {}
    if blobs:
        found = await session.execute(select(Thumbnail).where(Thumbnail.blob_sha256.in_(blobs)))
        for thumbnail in found.scalars():
            thumbnails.setdefault(thumbnail.blob_sha256, []).append(thumbnail)
    holding = await albums_holding(session, [image.id for image in images if image.owner_id])
    return [
        record_of(image, thumbnails.get(image.blob_sha256, []), holding.get(image.id, []))
        for image in images
    ]


async def list_images(
    session: AsyncSession,
    owner_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[CachedImage]:
    """The owner's images, newest first (ties by id), after the keyset `before`."""
    query = select(Image).where(Image.owner_id == owner_id)
    if before is not None:
        created_at, image_id = before
        query = query.where(
            Image.created_at <= created_at,
            or_(
                Image.created_at < created_at,
                and_(Image.created_at == created_at, Image.id < image_id),
            ),
        )
    result = await session.execute(
        query.order_by(Image.created_at.desc(), Image.id.desc()).limit(limit)
    )
    return await records_of(session, list(result.scalars()))


async def is_owner(session: AsyncSession, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    result = await session.execute(
        select(Image.id).where(Image.id == image_id, Image.owner_id == user_id)
    )
    return result.first() is not None


async def thumbnails_of_blob(session: AsyncSession, sha256: str) -> list[Thumbnail]:
    result = await session.execute(select(Thumbnail).where(Thumbnail.blob_sha256 == sha256))
    return list(result.scalars())


async def stale_pending_images(
    session: AsyncSession, quiet_since: datetime | None, limit: int
) -> list[uuid.UUID]:
    """Pending images whose job was last dispatched or started before `quiet_since`
    (every pending image when None), oldest first."""
    query = select(Image.id).where(Image.thumbnail_status == ThumbnailStatus.PENDING)
    if quiet_since is not None:
        query = query.where(Image.thumbnail_updated_at < quiet_since)
    result = await session.execute(query.order_by(Image.thumbnail_updated_at).limit(limit))
    return list(result.scalars())


async def thumbnail_rows(session: AsyncSession) -> list[tuple[str, str]]:
    """(blob, size) of every thumbnail row."""
    result = await session.execute(select(Thumbnail.blob_sha256, Thumbnail.size))
    return [(blob, size) for blob, size in result]


async def get_idempotent_response(
    session: AsyncSession, key_hash: str, not_before: datetime
) -> Row[str, str | None] | None:
    """The live record's response body and the fingerprint of the request it answered."""
    result = await session.execute(
        select(IdempotencyRecord.response_json, IdempotencyRecord.request_fingerprint).where(
            IdempotencyRecord.key_hash == key_hash, IdempotencyRecord.created_at >= not_before
        )
    )
    return result.first()


async def all_blob_keys(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Blob.sha256))).scalars())


async def orphan_blob_rows(session: AsyncSession) -> list[str]:
    """Blob rows that no image refers to (left by a crash between steps)."""
    referenced = select(Image.blob_sha256).distinct()
    result = await session.execute(select(Blob.sha256).where(Blob.sha256.not_in(referenced)))
    return list(result.scalars())


# ---- writes (inside Database.write) -----------------------------------------------------


def claim_blob(connection: Connection, sha256: str, size: int, content_type: str) -> bool:
    """Insert the blob row or lock the existing one; True when it is new.

    Holding this row lock serialises uploads and deletes of the same content, so a
    delete can never remove an object that a concurrent upload is about to reference.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    while True:
        inserted = connection.execute(
            dialect.insert(Blob)
            .values(sha256=sha256, size=size, content_type=content_type, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[Blob.sha256])
            .returning(Blob.sha256)
        )
        if inserted.first() is not None:
            return True
        if lock_blob(connection, sha256):
            return False
        # PostgreSQL: the row we conflicted with was deleted (its delete committed while
        # we waited for its lock). Each try takes a new snapshot: insert again.


def lock_blob(connection: Connection, sha256: str) -> bool:
    """Lock the blob row until the unit ends; False when there is none."""
    locked = connection.execute(select(Blob.sha256).where(Blob.sha256 == sha256).with_for_update())
    return locked.first() is not None


def count_blob_references(connection: Connection, sha256: str) -> int:
    result = connection.execute(select(func.count()).where(Image.blob_sha256 == sha256))
    return int(result.scalar_one())


def delete_blob(connection: Connection, sha256: str) -> None:
    """Remove the blob row and its thumbnail rows (the caller removes the objects)."""
    connection.execute(delete(Thumbnail).where(Thumbnail.blob_sha256 == sha256))
    connection.execute(delete(Blob).where(Blob.sha256 == sha256))


def insert_image(
    connection: Connection, image: CachedImage, owner_id: uuid.UUID | None, token_hash: str | None
) -> None:
    """Insert a new row with one Core statement (no unit-of-work flush on the hot path)."""
    values = {name: getattr(image, name) for name in RECORD_COLUMNS}
    values["owner_id"] = owner_id
    user_tags = set(image.tags) - set(image.tags_auto)
    connection.execute(
        insert(Image).values(
            **values,
            blob_sha256=image.sha256,
            delete_token_hash=token_hash,
            thumbnail_attempts=0,
            thumbnail_updated_at=image.created_at,
            tags_json=tags_json_of(sorted(user_tags), image.tags_auto),
            tags_attempts=0,
            tags_updated_at=image.created_at,
        )
    )


def blob_of(connection: Connection, image_id: uuid.UUID) -> str | None:
    """The image's blob, without locking anything."""
    result = connection.execute(select(Image.blob_sha256).where(Image.id == image_id))
    return result.scalar_one_or_none()


def lock_image(
    connection: Connection, image_id: uuid.UUID
) -> Row[str, str | None, uuid.UUID | None] | None:
    """The image's blob, delete-token digest and owner, its row locked until the unit ends."""
    result = connection.execute(
        select(Image.blob_sha256, Image.delete_token_hash, Image.owner_id)
        .where(Image.id == image_id)
        .with_for_update()
    )
    return result.first()


def delete_image(
    connection: Connection, image_id: uuid.UUID, requester: uuid.UUID | None
) -> Row[uuid.UUID | None, int] | None:
    """Delete the image if `requester` may: it is theirs, or it has no owner (the caller
    has checked its delete token). Its owner and size; None when not allowed.

    The ownership rule is in the statement itself, so a service that forgot to check
    still could not delete someone else's image."""
    allowed: ColumnElement[bool] = Image.owner_id.is_(None)
    if requester is not None:
        allowed = or_(allowed, Image.owner_id == requester)
    deleted = connection.execute(
        delete(Image)
        .where(Image.id == image_id, allowed)
        .returning(Image.owner_id, Image.file_size)
    )
    return deleted.first()


def delete_images_of_blob(
    connection: Connection, sha256: str
) -> list[Row[uuid.UUID, uuid.UUID | None, int]]:
    """Remove every image stored as `sha256`; their ids, owners and sizes."""
    deleted = connection.execute(
        delete(Image)
        .where(Image.blob_sha256 == sha256)
        .returning(Image.id, Image.owner_id, Image.file_size)
    )
    return list(deleted.all())


def save_idempotent_response(
    connection: Connection, key_hash: str, fingerprint: str, body: str, not_before: datetime
) -> None:
    """Store the response to the request `fingerprint`, replacing an expired record
    under the same key.

    A live record makes the insert fail with IntegrityError: a concurrent twin won."""
    connection.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.key_hash == key_hash, IdempotencyRecord.created_at < not_before
        )
    )
    connection.execute(
        insert(IdempotencyRecord).values(
            key_hash=key_hash,
            response_json=body,
            request_fingerprint=fingerprint,
            created_at=utcnow(),
        )
    )


def purge_idempotency(connection: Connection, older_than: datetime) -> int:
    result = connection.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < older_than)
    )
    return int(result.rowcount)


# ---- thumbnail jobs (inside Database.write) ---------------------------------------------


def start_thumbnail_attempt(connection: Connection, image_id: uuid.UUID) -> Row[str, int] | None:
    """Count one more attempt on a pending image; its blob and the attempt number, or None
    when the image is gone or no longer pending. Counted before the work, so an image
    that kills whoever works on it still runs out of attempts."""
    result = connection.execute(
        update(Image)
        .where(Image.id == image_id, Image.thumbnail_status == ThumbnailStatus.PENDING)
        .values(thumbnail_attempts=Image.thumbnail_attempts + 1, thumbnail_updated_at=utcnow())
        .returning(Image.blob_sha256, Image.thumbnail_attempts)
    )
    return result.first()


def save_thumbnails(
    connection: Connection, sha256: str, rows: Sequence[dict[str, object]]
) -> list[uuid.UUID]:
    """Upsert the blob's thumbnail rows and mark every pending image of the blob ready;
    the ids of the images that changed. Call with the blob row locked."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for row in rows:
        statement = dialect.insert(Thumbnail).values(blob_sha256=sha256, created_at=utcnow(), **row)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[Thumbnail.blob_sha256, Thumbnail.size],
                set_={
                    "sha256": statement.excluded.sha256,
                    "file_size": statement.excluded.file_size,
                    "width": statement.excluded.width,
                    "height": statement.excluded.height,
                },
            )
        )
    return mark_blob_images_ready(connection, sha256)


def mark_blob_images_ready(connection: Connection, sha256: str) -> list[uuid.UUID]:
    result = connection.execute(
        update(Image)
        .where(Image.blob_sha256 == sha256, Image.thumbnail_status == ThumbnailStatus.PENDING)
        .values(thumbnail_status=ThumbnailStatus.READY, thumbnail_updated_at=utcnow())
        .returning(Image.id)
    )
    return list(result.scalars())


def has_thumbnail(connection: Connection, sha256: str, size: str) -> bool:
    result = connection.execute(
        select(Thumbnail.size).where(Thumbnail.blob_sha256 == sha256, Thumbnail.size == size)
    )
    return result.first() is not None


def fail_thumbnail(connection: Connection, image_id: uuid.UUID) -> bool:
    result = connection.execute(
        update(Image)
        .where(Image.id == image_id, Image.thumbnail_status == ThumbnailStatus.PENDING)
        .values(thumbnail_status=ThumbnailStatus.FAILED, thumbnail_updated_at=utcnow())
    )
    return bool(result.rowcount)


def reset_thumbnails(connection: Connection, sha256: str) -> list[uuid.UUID]:
    """Forget the blob's thumbnails (their objects are missing): its ready images go
    back to pending with fresh attempts; their ids."""
    connection.execute(delete(Thumbnail).where(Thumbnail.blob_sha256 == sha256))
    result = connection.execute(
        update(Image)
        .where(Image.blob_sha256 == sha256, Image.thumbnail_status == ThumbnailStatus.READY)
        .values(
            thumbnail_status=ThumbnailStatus.PENDING,
            thumbnail_attempts=0,
            thumbnail_updated_at=utcnow(),
        )
        .returning(Image.id)
    )
    return list(result.scalars())
