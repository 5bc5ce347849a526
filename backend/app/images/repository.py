"""SQL for images, blobs and idempotency records; every query lives here.

Reads are async and take an `AsyncSession`. Writes are plain functions of a
`Connection`: they run inside one `Database.write` unit of work, which holds the write
lock (SQLite) or the row locks (PostgreSQL) for exactly that unit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Uuid,
    and_,
    delete,
    distinct,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.images import search
from app.images.cache import RECORD_COLUMNS, CachedImage, record_of, tags_json_of
from app.images.camera import CameraDetails
from app.images.search import Filters
from app.models import (
    Album,
    AlbumImage,
    Blob,
    IdempotencyRecord,
    Image,
    ImageExif,
    ImageTag,
    TagSource,
    TagsStatus,
    Thumbnail,
    ThumbnailStatus,
)
from app.models.base import utcnow

PLAIN = Filters()  # no filter: every image, newest first

# ---- reads ------------------------------------------------------------------------------


def not_expired(now: datetime) -> ColumnElement[bool]:
    """Images that have not expired by `now` (expired ones answer 404 everywhere)."""
    return or_(Image.expires_at.is_(None), Image.expires_at > now)


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


async def records_by_id(
    session: AsyncSession, image_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CachedImage]:
    """The records of those of `image_ids` that exist, by id."""
    found: dict[uuid.UUID, CachedImage] = {}
    for start in range(0, len(image_ids), 500):  # bounded IN lists
        result = await session.execute(
            select(Image).where(Image.id.in_(image_ids[start : start + 500]))
        )
        found.update((r.id, r) for r in await records_of(session, list(result.scalars())))
    return found


async def list_images(
    session: AsyncSession,
    owner_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
    filters: Filters = PLAIN,
    now: datetime | None = None,
) -> list[CachedImage]:
    """The owner's images that match `filters` and have not expired by `now`, newest or
    oldest first as `filters.sort` says (ties by id), after the keyset `before`: the one
    query behind listing and search, on both databases. Without filters it is one range
    scan of the owner's (created_at, id) index."""
    newest = filters.sort == "newest"
    listing = select(Image).where(Image.owner_id == owner_id, not_expired(now or utcnow()))
    if before is not None:
        listing = listing.where(*_after(before, newest))
    if filters.plain:
        found = await _page(session, listing, newest, limit)
    elif session.get_bind().dialect.name == "postgresql":
        conditions = search.postgres_conditions(filters, owner_id)
        found = await _page(session, listing.where(*conditions), newest, limit)
    else:
        found = await _sqlite_search(session, owner_id, before, limit, filters, now or utcnow())
    return await records_of(session, found)


async def _page(
    session: AsyncSession, query: Select[Image], newest: bool, limit: int
) -> list[Image]:
    order = (Image.created_at.desc(), Image.id.desc()) if newest else (Image.created_at, Image.id)
    result = await session.execute(query.order_by(*order).limit(limit))
    return list(result.scalars())


# SQLite first checks the owner's newest (or oldest) rows, this many at most: a word or
# tag on more than one image in fifty fills a page there.
SCAN_FIRST = 1000
# Past them, up to this many matches are listed from their index and sorted; more are
# found by walking the owner's index in order, looking each entry up in the matches.
SORT_AT_MOST = 5000


async def _sqlite_search(
    session: AsyncSession,
    owner_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
    filters: Filters,
    now: datetime,
) -> list[Image]:
    """Search on SQLite, which cannot tell a common word from a rare one, in steps:
    check the first SCAN_FIRST rows in order; unless that fills the page, count the
    matches in their index (up to SORT_AT_MOST), then list and sort them when they are
    few, or walk the owner's index looking them up when they are many."""
    newest = filters.sort == "newest"
    keyset = _after(before, newest) if before is not None else ()
    mine = (Image.owner_id == owner_id, not_expired(now), *keyset)
    if filters.album_id is None:  # an album has at most 1,000 images: listed at once
        edge = await _scan_edge(session, owner_id, keyset, newest)
        scan = select(Image).where(*mine, *search.sqlite_checks(filters.words, filters.tags))
        if edge is None:  # the scan covers every row left
            return await _page(session, scan, newest, limit)
        within = Image.created_at >= edge if newest else Image.created_at <= edge
        found = await _page(session, scan.where(within), newest, limit)
        if len(found) == limit:
            return found
        counted = await session.scalar(search.sqlite_listed_count(filters, owner_id, SORT_AT_MOST))
        if (counted or 0) >= SORT_AT_MOST:
            walk = select(Image).where(*mine, *search.sqlite_lists(filters, owner_id))
            return await _page(session, walk, newest, limit)
    # "+owner_id": not the owner's index, whose order would tempt SQLite into walking it.
    not_by_owner = literal_column("+images.owner_id", Uuid()) == owner_id
    listed = select(Image).where(not_by_owner, *mine[1:], *search.sqlite_listed(filters, owner_id))
    return await _page(session, listed, newest, limit)


async def _scan_edge(
    session: AsyncSession,
    owner_id: uuid.UUID,
    keyset: Sequence[ColumnElement[bool]],
    newest: bool,
) -> datetime | None:
    """The creation time of the SCAN_FIRST-th row in order (from the owner's index
    alone); None when fewer rows are left."""
    order = (Image.created_at.desc(), Image.id.desc()) if newest else (Image.created_at, Image.id)
    result = await session.execute(
        select(Image.created_at)
        .where(Image.owner_id == owner_id, *keyset)
        .order_by(*order)
        .offset(SCAN_FIRST - 1)
        .limit(1)
    )
    return result.scalar_one_or_none()


def _after(before: tuple[datetime, uuid.UUID], newest: bool) -> tuple[ColumnElement[bool], ...]:
    """The keyset condition "after `before`" in the listing's order."""
    created_at, image_id = before
    if newest:
        return Image.created_at <= created_at, or_(
            Image.created_at < created_at,
            and_(Image.created_at == created_at, Image.id < image_id),
        )
    return Image.created_at >= created_at, or_(
        Image.created_at > created_at,
        and_(Image.created_at == created_at, Image.id > image_id),
    )


async def owns_album(session: AsyncSession, album_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
    result = await session.execute(
        select(Album.id).where(Album.id == album_id, Album.owner_id == owner_id)
    )
    return result.first() is not None


async def tag_counts(
    session: AsyncSession, owner_id: uuid.UUID, prefix: str, limit: int, now: datetime
) -> list[tuple[str, int]]:
    """The owner's tags starting with `prefix`, with how many of their images that have
    not expired carry each, most used first (ties by name)."""
    # Expired images not yet swept are few (and found by their partial index): leaving
    # them out costs less than joining every tag row to its image.
    expired = select(Image.id).where(Image.owner_id == owner_id, Image.expires_at <= now)
    images = func.count(distinct(ImageTag.image_id))
    query = select(ImageTag.name, images).where(
        ImageTag.owner_id == owner_id, ImageTag.image_id.not_in(expired)
    )
    if prefix:
        query = query.where(ImageTag.name.startswith(prefix, autoescape=True))
    result = await session.execute(
        query.group_by(ImageTag.name).order_by(images.desc(), ImageTag.name).limit(limit)
    )
    return [(name, int(count)) for name, count in result]


async def is_owner(session: AsyncSession, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    result = await session.execute(
        select(Image.id).where(Image.id == image_id, Image.owner_id == user_id)
    )
    return result.first() is not None


async def expired_images(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Images whose expiry has passed by `now`, the longest expired first."""
    result = await session.execute(
        select(Image.id)
        .where(Image.expires_at.is_not(None), Image.expires_at <= now)
        .order_by(Image.expires_at)
        .limit(limit)
    )
    return list(result.scalars())


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
            search_text=search.search_text_of(
                image.filename, image.title, image.description, image.tags
            ),
        )
    )
    if image.tags:
        _insert_tags(connection, image.id, owner_id, TagSource.USER, sorted(user_tags))
        _insert_tags(connection, image.id, owner_id, TagSource.AUTO, image.tags_auto)


def blob_of(connection: Connection, image_id: uuid.UUID) -> str | None:
    """The image's blob, without locking anything."""
    result = connection.execute(select(Image.blob_sha256).where(Image.id == image_id))
    return result.scalar_one_or_none()


# blob_sha256, delete_token_hash, owner_id, visibility, expires_at
LockedImage = Row[str, str | None, uuid.UUID | None, str, datetime | None]


def lock_image(connection: Connection, image_id: uuid.UUID) -> LockedImage | None:
    """The image's blob, delete-token digest, owner, visibility and expiry, its row
    locked until the unit ends."""
    result = connection.execute(
        select(
            Image.blob_sha256,
            Image.delete_token_hash,
            Image.owner_id,
            Image.visibility,
            Image.expires_at,
        )
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


def delete_expired_image(
    connection: Connection, image_id: uuid.UUID, now: datetime
) -> Row[uuid.UUID | None, int] | None:
    """Delete the image if it has expired by `now`: its owner and size, else None."""
    deleted = connection.execute(
        delete(Image)
        .where(Image.id == image_id, Image.expires_at <= now)
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
                    "placeholder": statement.excluded.placeholder,
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


# ---- the library (inside Database.write) ------------------------------------------------

# What PATCH may set besides the tags.
EDITABLE = frozenset({"title", "description", "visibility", "expires_at"})


def _owned_by(owner_id: uuid.UUID | None) -> ColumnElement[bool]:
    return Image.owner_id.is_(None) if owner_id is None else Image.owner_id == owner_id


def _lock_searched(
    connection: Connection, image_id: uuid.UUID, owner_id: uuid.UUID | None
) -> Row[str, str | None, str | None, str] | None:
    """The fields the search text is made of, the owner's image row locked."""
    result = connection.execute(
        select(Image.filename, Image.title, Image.description, Image.tags_json)
        .where(Image.id == image_id, _owned_by(owner_id))
        .with_for_update()
    )
    return result.first()


def update_image(
    connection: Connection,
    image_id: uuid.UUID,
    owner_id: uuid.UUID,
    values: Mapping[str, Any],
    user_tags: Sequence[str] | None = None,
) -> bool:
    """Set `values` (any of EDITABLE) and, unless None, the user's tags (normalised:
    app.images.tags) on the owner's image; False when the owner has no such image.
    One UPDATE of the row: see `replace_tags`."""
    if not set(values) <= EDITABLE:
        raise ValueError(f"not editable: {sorted(set(values) - EDITABLE)}")
    return _rewrite(connection, image_id, owner_id, values, TagSource.USER, user_tags)


def replace_tags(
    connection: Connection,
    image_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    source: str,
    names: Sequence[str],
    also: Mapping[str, Any] | None = None,
) -> bool:
    """Make `names` (normalised: app.images.tags) the image's tags of `source` (user or
    auto), keeping the other source's: its `image_tags` rows, `tags_json` and search
    text, in the caller's unit, with the columns `also` names. Scoped by owner (None:
    an anonymous image); False when there is no such image.

    It updates the image row once, and the unit must not update that row before: on a
    row's second update in a transaction PostgreSQL checks its blob foreign key again,
    a share lock on the blob that, taken while holding the row, deadlocks with a
    thumbnail job (which holds the blob, then updates the blob's images). Put any other
    column in `also` instead."""
    if source not in (TagSource.USER, TagSource.AUTO):
        raise ValueError(f"unknown tag source {source!r}")
    return _rewrite(connection, image_id, owner_id, also or {}, source, names)


def _rewrite(
    connection: Connection,
    image_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    values: Mapping[str, Any],
    source: str,
    names: Sequence[str] | None,
) -> bool:
    """Lock the owner's image row, set `values` and the `source` tags (unless None),
    and refresh its search text: one UPDATE."""
    row = _lock_searched(connection, image_id, owner_id)
    if row is None:
        return False
    filename, title, description, tags_json = row
    stored: dict[str, list[str]] = json.loads(tags_json or "{}")
    tags = {"user": stored.get("user", []), "auto": stored.get("auto", [])}
    changes = dict(values)
    if names is not None:
        tags[source] = sorted(set(names))
        connection.execute(
            delete(ImageTag).where(ImageTag.image_id == image_id, ImageTag.source == source)
        )
        _insert_tags(connection, image_id, owner_id, source, tags[source])
        changes["tags_json"] = tags_json_of(tags["user"], tags["auto"])
    changes["search_text"] = search.search_text_of(
        filename,
        changes.get("title", title),
        changes.get("description", description),
        {*tags["user"], *tags["auto"]},
    )
    connection.execute(update(Image).where(Image.id == image_id).values(**changes))
    return True


def _insert_tags(
    connection: Connection,
    image_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    source: str,
    names: Sequence[str],
) -> None:
    if names:
        connection.execute(
            insert(ImageTag),
            [
                {"image_id": image_id, "source": source, "name": name, "owner_id": owner_id}
                for name in dict.fromkeys(names)
            ],
        )


# ---- camera details (contract section 11: the owner's only, never location) ------------

_CAMERA_COLUMNS = tuple(getattr(ImageExif, name) for name in CameraDetails.__dataclass_fields__)


def insert_exif(connection: Connection, image_id: uuid.UUID, details: CameraDetails) -> None:
    """Store the camera details read from the image's upload."""
    values = {name: getattr(details, name) for name in CameraDetails.__dataclass_fields__}
    connection.execute(insert(ImageExif).values(image_id=image_id, **values))


async def get_exif(
    session: AsyncSession, image_id: uuid.UUID, owner_id: uuid.UUID
) -> CameraDetails | None:
    """The camera details of `owner_id`'s image (all None when the upload had none);
    None when the image is not theirs or does not exist."""
    result = await session.execute(
        select(Image.id, *_CAMERA_COLUMNS)
        .outerjoin(ImageExif, ImageExif.image_id == Image.id)
        .where(Image.id == image_id, Image.owner_id == owner_id)
    )
    row = result.first()
    return None if row is None else CameraDetails(*row[1:])


def _names_a_camera(image_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        ImageExif.image_id == image_id,
        or_(ImageExif.camera_make.is_not(None), ImageExif.camera_model.is_not(None)),
    )


async def has_camera_exif(session: AsyncSession, image_id: uuid.UUID) -> bool:
    """Whether the image's upload named its camera (make or model): a photo."""
    found = await session.execute(select(ImageExif.image_id).where(_names_a_camera(image_id)))
    return found.first() is not None


def has_camera_exif_in(connection: Connection, image_id: uuid.UUID) -> bool:
    """`has_camera_exif` inside a `Database.write` unit."""
    found = connection.execute(select(ImageExif.image_id).where(_names_a_camera(image_id)))
    return found.first() is not None


# ---- tag jobs (app.jobs.tagging) --------------------------------------------------------

# blob_sha256, tags_attempts, width, height, frames, thumbnail_status
TagClaim = Row[str, int, int, int, int, str]


async def stale_pending_tags(
    session: AsyncSession, quiet_since: datetime | None, limit: int
) -> list[uuid.UUID]:
    """Images waiting for tags whose thumbnails are settled and whose tag job was last
    started before `quiet_since` or never (every such image when None), oldest first."""
    query = select(Image.id).where(
        Image.tags_status == TagsStatus.PENDING,
        Image.thumbnail_status != ThumbnailStatus.PENDING,
    )
    if quiet_since is not None:
        query = query.where(
            or_(Image.tags_updated_at.is_(None), Image.tags_updated_at < quiet_since)
        )
    result = await session.execute(
        query.order_by(Image.tags_updated_at.is_not(None), Image.tags_updated_at).limit(limit)
    )
    return list(result.scalars())


def start_tags_attempt(connection: Connection, image_id: uuid.UUID) -> TagClaim | None:
    """Count one more tag attempt on an image waiting for tags whose thumbnails are
    settled; what the tagger needs to know, or None when it is gone, not waiting, or
    its thumbnail job still runs (which asks for the tags when it ends). Counted before
    the work, like thumbnail attempts."""
    result = connection.execute(
        update(Image)
        .where(
            Image.id == image_id,
            Image.tags_status == TagsStatus.PENDING,
            Image.thumbnail_status != ThumbnailStatus.PENDING,
        )
        .values(tags_attempts=Image.tags_attempts + 1, tags_updated_at=utcnow())
        .returning(
            Image.blob_sha256,
            Image.tags_attempts,
            Image.width,
            Image.height,
            Image.frames,
            Image.thumbnail_status,
        )
    )
    return result.first()


def save_auto_tags(connection: Connection, image_id: uuid.UUID, names: Sequence[str]) -> bool:
    """Make `names` the image's automatic tags and its tags ready, if it still waits for
    them (a second run of the same job changes nothing); whether it did."""
    waiting = connection.execute(
        select(Image.owner_id)
        .where(Image.id == image_id, Image.tags_status == TagsStatus.PENDING)
        .with_for_update()
    ).first()
    if waiting is None:
        return False
    # One UPDATE of the row (see replace_tags: a second one deadlocks with thumbnail jobs).
    settled = {"tags_status": TagsStatus.READY, "tags_updated_at": utcnow()}
    return replace_tags(connection, image_id, waiting.owner_id, TagSource.AUTO, names, also=settled)


def fail_tags(connection: Connection, image_id: uuid.UUID) -> bool:
    result = connection.execute(
        update(Image)
        .where(Image.id == image_id, Image.tags_status == TagsStatus.PENDING)
        .values(tags_status=TagsStatus.FAILED, tags_updated_at=utcnow())
    )
    return bool(result.rowcount)


def disable_pending_tags(connection: Connection, limit: int) -> list[uuid.UUID]:
    """With `TAGGER=none`: up to `limit` images still waiting for tags will not get
    them (uploads from before the tagger was turned off); their ids."""
    waiting = select(Image.id).where(Image.tags_status == TagsStatus.PENDING).limit(limit)
    result = connection.execute(
        update(Image)
        .where(Image.id.in_(waiting.scalar_subquery()))
        .values(tags_status=TagsStatus.DISABLED, tags_updated_at=utcnow())
        .returning(Image.id)
    )
    return list(result.scalars())
