"""Stored images: read, list, serve and delete them (uploads: app.images.upload;
response bodies: app.images.presenter). Each change is one `Database.write` unit (ADR 0018)."""

from __future__ import annotations

import logging
import uuid
from functools import partial

from sqlalchemy import Connection

from app.auth import quotas
from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.errors import Forbidden, ServiceUnavailable
from app.images import repository, tokens
from app.images.cache import CachedImage, CacheResult, MetadataCache
from app.images.cursor import decode_cursor, encode_cursor
from app.images.errors import (
    DeleteTokenRequired,
    ImageNotFound,
    InvalidDeleteToken,
    ThumbnailFailed,
    ThumbnailNotReady,
)
from app.images.presenter import ImagePresenter
from app.images.schemas import ImageList, ThumbnailSize
from app.images.serving import ObjectCache, ServedObject
from app.images.thumbnails import CONTENT_TYPE as THUMBNAIL_CONTENT_TYPE
from app.images.thumbnails import THUMBNAIL_SIZES
from app.infra.db import Database, RunAsync
from app.infra.metrics import CACHE_REQUESTS
from app.infra.replicas import Reads
from app.models import ThumbnailStatus
from app.models.blob import object_key
from app.models.thumbnail import thumbnail_key
from app.storage import Storage

log = logging.getLogger(__name__)

CACHE_RESULTS = {
    result: CACHE_REQUESTS.labels(result=result.lower()) for result in ("HIT", "MISS", "BYPASS")
}
# How long a client should wait before asking for a pending thumbnail again.
THUMBNAIL_RETRY_AFTER = 2


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

    async def get(self, image_id: uuid.UUID) -> tuple[CachedImage, CacheResult]:
        """The image's public metadata, through the cache, and whether the cache had it."""
        image, result = await self.cache.get_or_load(image_id, self._load)
        CACHE_RESULTS[result].inc()
        if image is None:
            raise ImageNotFound()
        return image, result

    async def _load(self, image_id: uuid.UUID) -> CachedImage | None:
        # A replica that lacks the row may only be behind: the primary confirms a miss.
        return await self.reads.read(
            partial(repository.get_image, image_id=image_id),
            image_id=image_id,
            confirm_missing=True,
        )

    async def list_images(
        self, caller: Principal, limit: int, cursor: str | None, base_url: str
    ) -> ImageList:
        """A page of the caller's images, newest first, and the cursor of the next."""
        if caller.user_id is None:
            raise Unauthorized()
        before = decode_cursor(cursor) if cursor else None
        user_id = caller.user_id
        found = await self.reads.read(
            partial(repository.list_images, owner_id=user_id, before=before, limit=limit + 1),
            user_id=user_id,
        )
        page = found[:limit]
        items = [self.presenter.read(image, base_url) for image in page]
        next_cursor = encode_cursor(page[-1]) if len(found) > limit else None
        return ImageList(items=items, next_cursor=next_cursor)

    async def is_owner(self, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        async with self.database.reader() as session:
            return await repository.is_owner(session, image_id, user_id)

    async def served_object(self, image_id: uuid.UUID) -> ServedObject:
        image, _ = await self.get(image_id)
        return ServedObject(
            key=object_key(image.sha256),
            sha256=image.sha256,
            size=image.file_size,
            content_type=image.content_type,
            filename=image.filename,
            modified_at=image.created_at,
        )

    async def served_thumbnail(self, image_id: uuid.UUID, size: ThumbnailSize) -> ServedObject:
        image, _ = await self.get(image_id)
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
        )

    # ---- delete -------------------------------------------------------------------------

    async def delete(
        self, image_id: uuid.UUID, caller: Principal, delete_token: str | None
    ) -> None:
        """Remove the row and, when no other image shares it, the objects.
        Owned images go only by their owner; anonymous ones by their delete token.

        The rows go first, in one transaction; the objects only once it has committed, so
        a commit that fails leaves the image whole (row and file). A crash in between
        leaves objects without rows, which `chitram reconcile` removes."""
        requester = caller.user_id

        def delete_rows(connection: Connection, _run_async: RunAsync) -> str | None:
            # The blob before the image: thumbnail jobs lock in that order, and the other
            # order deadlocked under load. An image never changes blobs.
            sha256 = repository.blob_of(connection, image_id)
            if sha256 is None or not repository.lock_blob(connection, sha256):
                raise ImageNotFound()
            row = repository.lock_image(connection, image_id)
            if row is None:
                raise ImageNotFound()
            _, token_digest, owner_id = row
            if owner_id is not None and owner_id != requester:
                raise Forbidden("Only the image's owner may delete it")
            if owner_id is None:
                if not delete_token:
                    raise DeleteTokenRequired()
                if token_digest is None or not tokens.matches(delete_token, token_digest):
                    raise InvalidDeleteToken()
            deleted = repository.delete_image(connection, image_id, requester)
            if deleted is None:
                raise Forbidden("Only the image's owner may delete it")
            if deleted.owner_id is not None:
                quotas.refund(connection, deleted.owner_id, deleted.file_size)
            if repository.count_blob_references(connection, sha256):
                return None
            repository.delete_blob(connection, sha256)
            return sha256  # its objects go once this has committed

        unreferenced = await self.database.write(delete_rows)
        # The marker before the invalidation: see app.infra.replicas.
        await self.reads.wrote(image_id=image_id, user_id=requester)
        await self.cache.invalidate(image_id)
        if unreferenced is not None:
            await self._remove_objects(unreferenced)
        log.info("image deleted", extra={"image_id": str(image_id)})

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
