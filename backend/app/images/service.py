"""Stored images: read, list, serve and delete them (uploads: app.images.upload;
response bodies: app.images.presenter). Each change is one `Database.write` unit (ADR 0018)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from functools import partial

from sqlalchemy import Connection, Row

from app.auth import quotas
from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.errors import Forbidden, ServiceUnavailable
from app.images import repository, tokens
from app.images.cache import CachedImage, CacheResult, MetadataCache
from app.images.errors import (
    DeleteTokenRequired,
    ImageNotFound,
    InvalidDeleteToken,
    ThumbnailFailed,
    ThumbnailNotReady,
)
from app.images.presenter import ImagePresenter
from app.images.repository import LockedImage
from app.images.schemas import ExifRead, ThumbnailSize
from app.images.serving import CACHE_FOREVER, CACHE_PRIVATE, ObjectCache, ServedObject
from app.images.thumbnails import CONTENT_TYPE as THUMBNAIL_CONTENT_TYPE
from app.images.thumbnails import THUMBNAIL_SIZES
from app.infra.db import Database, RunAsync
from app.infra.metrics import CACHE_REQUESTS
from app.infra.replicas import Reads
from app.models import ThumbnailStatus, Visibility
from app.models.base import utcnow
from app.models.blob import object_key
from app.models.thumbnail import thumbnail_key
from app.storage import Storage

log = logging.getLogger(__name__)

CACHE_RESULTS = {
    result: CACHE_REQUESTS.labels(result=result.lower()) for result in ("HIT", "MISS", "BYPASS")
}
# How long a client should wait before asking for a pending thumbnail again.
THUMBNAIL_RETRY_AFTER = 2
# Shared caches may keep an expiring image's bytes no longer than it lives.
_A_YEAR = 31_536_000


def cache_control(image: CachedImage) -> str:
    """How long browsers and shared caches may keep the image's bytes: private images
    never, expiring ones until they expire, the rest for ever (the bytes never change)."""
    if image.visibility == Visibility.PRIVATE:
        return CACHE_PRIVATE
    if image.expires_at is not None:
        left = int((image.expires_at - utcnow()).total_seconds())
        return f"public, max-age={max(0, min(left, _A_YEAR))}"
    return CACHE_FOREVER


class ImageService:
    """Read, serve and delete images over one database and one storage backend."""

    def __init__(
        self,
        database: Database,
        reads: Reads,
        storage: Storage,
        cache: MetadataCache,
        object_cache: ObjectCache,
        presenter: ImagePresenter,
    ) -> None:
        self.database = database  # writes, and reads that need the newest state
        self.reads = reads  # metadata and listings: a replica when one is fresh enough
        self.storage = storage
        self.cache = cache
        self.object_cache = object_cache
        self.presenter = presenter  # stored images as response bodies

    # ---- read ---------------------------------------------------------------------------

    async def get(
        self, image_id: uuid.UUID, viewer: uuid.UUID | None = None
    ) -> tuple[CachedImage, CacheResult]:
        """The image as `viewer` (None: anonymous) may see it, through the cache, and
        whether the cache had it. Private images of others and expired images are 404:
        checked here, on every read, whatever the cache or a replica holds."""
        image, result = await self.cache.get_or_load(image_id, self._load)
        CACHE_RESULTS[result].inc()
        if image is None or not image.visible_to(viewer, utcnow()):
            raise ImageNotFound()
        return image, result

    async def _load(self, image_id: uuid.UUID) -> CachedImage | None:
        # A replica that lacks the row may only be behind: the primary confirms a miss.
        return await self.reads.read(
            partial(repository.get_image, image_id=image_id),
            image_id=image_id,
            confirm_missing=True,
        )

    async def is_owner(self, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        async with self.database.reader() as session:
            return await repository.is_owner(session, image_id, user_id)

    async def served_object(
        self, image_id: uuid.UUID, viewer: uuid.UUID | None = None
    ) -> ServedObject:
        image, _ = await self.get(image_id, viewer)
        return ServedObject(
            key=object_key(image.sha256),
            sha256=image.sha256,
            size=image.file_size,
            content_type=image.content_type,
            filename=image.filename,
            modified_at=image.created_at,
            cache_control=cache_control(image),
        )

    async def served_thumbnail(
        self, image_id: uuid.UUID, size: ThumbnailSize, viewer: uuid.UUID | None = None
    ) -> ServedObject:
        image, _ = await self.get(image_id, viewer)
        if image.thumbnail_status == ThumbnailStatus.FAILED:
            raise ThumbnailFailed()
        thumb = next((t for t in image.thumbnails if t.size == size), None)
        if image.thumbnail_status != ThumbnailStatus.READY or thumb is None:
            raise ThumbnailNotReady(retry_after=THUMBNAIL_RETRY_AFTER)
        stem = image.filename.rsplit(".", 1)[0] or "image"
        return ServedObject(
            key=thumbnail_key(image.sha256, size),
            sha256=thumb.sha256,
            size=thumb.file_size,
            content_type=THUMBNAIL_CONTENT_TYPE,
            filename=f"{stem}-{size}.webp",
            modified_at=image.created_at,
            cache_control=cache_control(image),
        )

    # ---- delete -------------------------------------------------------------------------

    async def delete(
        self, image_id: uuid.UUID, caller: Principal, delete_token: str | None
    ) -> None:
        """Delete the image as its owner (or, for anonymous images, with its delete token):
        metadata, file and thumbnails are gone at once."""
        requester = caller.user_id

        def authorise(row: LockedImage) -> None:
            _, token_digest, owner_id, visibility, expires_at = row
            if expires_at is not None and expires_at <= utcnow():
                raise ImageNotFound()  # gone for everyone; the sweeper deletes it
            if owner_id is not None and owner_id != requester:
                if visibility == Visibility.PRIVATE:
                    raise ImageNotFound()  # its existence is not revealed
                raise Forbidden("Only the image's owner may delete it")
            if owner_id is None:
                if not delete_token:
                    raise DeleteTokenRequired()
                if token_digest is None or not tokens.matches(delete_token, token_digest):
                    raise InvalidDeleteToken()

        def remove(connection: Connection) -> Row[uuid.UUID | None, int] | None:
            return repository.delete_image(connection, image_id, requester)

        await self._delete(image_id, authorise, remove)
        log.info("image deleted", extra={"image_id": str(image_id)})

    async def expire_due(self, limit: int = 200) -> int:
        """Delete, as `delete` does, up to `limit` images whose expiry has passed (they
        have answered 404 since); how many went."""
        now = utcnow()
        async with self.database.reader() as session:
            due = await repository.expired_images(session, now, limit)
        expired = 0
        for image_id in due:

            def remove(
                connection: Connection, image_id: uuid.UUID = image_id
            ) -> Row[uuid.UUID | None, int] | None:
                return repository.delete_expired_image(connection, image_id, now)

            try:
                await self._delete(image_id, lambda _row: None, remove)
            except (ImageNotFound, Forbidden):
                continue  # deleted meanwhile (its owner, another sweeper) or given more time
            expired += 1
            log.info("image expired", extra={"image_id": str(image_id)})
        return expired

    async def _delete(
        self,
        image_id: uuid.UUID,
        authorise: Callable[[LockedImage], None],
        remove: Callable[[Connection], Row[uuid.UUID | None, int] | None],
    ) -> None:
        """Remove the row (if `authorise` lets it and `remove`'s statement finds it) and,
        when no other image shares it, the objects.

        The rows go first, in one transaction; the objects only once it has committed, so
        a commit that fails leaves the image whole (row and file). A crash in between
        leaves objects without rows, which `chitram reconcile` removes."""

        def delete_rows(
            connection: Connection, _run_async: RunAsync
        ) -> tuple[uuid.UUID | None, str | None]:
            # The blob before the image: thumbnail jobs lock in that order, and the other
            # order deadlocked under load. An image never changes blobs.
            sha256 = repository.blob_of(connection, image_id)
            if sha256 is None or not repository.lock_blob(connection, sha256):
                raise ImageNotFound()
            row = repository.lock_image(connection, image_id)
            if row is None:
                raise ImageNotFound()
            authorise(row)
            deleted = remove(connection)
            if deleted is None:
                if row.owner_id is None:
                    raise ImageNotFound()
                raise Forbidden("Only the image's owner may delete it")
            if deleted.owner_id is not None:
                quotas.refund(connection, deleted.owner_id, deleted.file_size)
            if repository.count_blob_references(connection, sha256):
                return deleted.owner_id, None
            repository.delete_blob(connection, sha256)
            return deleted.owner_id, sha256  # its objects go once this has committed

        owner_id, unreferenced = await self.database.write(delete_rows)
        # The marker before the invalidation: see app.infra.replicas.
        await self.reads.wrote(image_id=image_id, user_id=owner_id)
        await self.cache.invalidate(image_id)
        if unreferenced is not None:
            await self._remove_objects(unreferenced)

    async def _remove_objects(self, sha256: str) -> None:
        """Remove the objects of a blob whose rows this delete has just committed away."""
        keys = [object_key(sha256), *(thumbnail_key(sha256, s) for s in THUMBNAIL_SIZES)]
        try:
            await self.remove_unclaimed_objects(sha256, keys)
        except ServiceUnavailable:
            # The image is deleted all the same; reconcile removes what is left.
            log.warning("objects of a deleted image left for reconcile", extra={"sha256": sha256})

    async def remove_unclaimed_objects(self, sha256: str, keys: list[str]) -> bool:
        """Remove `keys` of a blob that has no row, unless an upload claims the same
        bytes again meanwhile: its claim has a row, which keeps them. False when kept.

        Under the blob lock: a placeholder row holds the key while the objects go, so a
        concurrent upload's claim waits for us, then finds the object missing and asks
        for a retry (it re-checks under the lock) instead of answering 201 without one."""

        def remove_unless_claimed(connection: Connection, run_async: RunAsync) -> bool:
            if not repository.claim_blob(connection, sha256, 0, ""):
                return False  # claimed again since the row went: the objects are in use
            for key in keys:
                run_async(self.storage.delete, key)
            repository.delete_blob(connection, sha256)  # the placeholder: never committed
            return True

        removed = await self.database.write(remove_unless_claimed)
        if removed:
            for key in keys:
                self.object_cache.discard(key)  # only memory: a deleted image is refused first
        return removed

    # ---- for other domains (albums) -----------------------------------------------------

    async def records(self, image_ids: Sequence[uuid.UUID]) -> list[CachedImage]:
        """The records of those of `image_ids` that exist, in that order, from the primary
        (fresh: no cache), whoever may see them: the caller decides."""
        async with self.database.reader() as session:
            found = await repository.records_by_id(session, image_ids)
        return [found[image_id] for image_id in image_ids if image_id in found]

    async def forget(self, image_ids: Iterable[uuid.UUID], owner_id: uuid.UUID | None) -> None:
        """After a committed change to these images made elsewhere (album membership
        changes their `album_ids`): later reads, cached or on a replica, see it."""
        for image_id in image_ids:
            # The marker before the invalidation: see app.infra.replicas.
            await self.reads.wrote(image_id=image_id, user_id=owner_id)
            await self.cache.invalidate(image_id)


# ---- camera details ---------------------------------------------------------------------


async def exif_of(images: ImageService, image_id: uuid.UUID, caller: Principal) -> ExifRead:
    """The camera details of the caller's own image. Others get what they would get
    anywhere (404 for a private or expired image), then 403: the details are the owner's."""
    owner = caller.user_id
    if owner is None:
        raise Unauthorized()
    image, _ = await images.get(image_id, owner)
    if image.owner_id != owner:
        raise Forbidden("Only the image's owner may see its camera details")
    details = await images.reads.read(
        partial(repository.get_exif, image_id=image_id, owner_id=owner),
        image_id=image_id,
        user_id=owner,
        confirm_missing=True,
    )
    if details is None:
        raise ImageNotFound()  # deleted since
    return ExifRead(**asdict(details), width=image.width, height=image.height)
