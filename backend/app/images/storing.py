"""Storing one received file: check its bytes, put its object, commit its row, then
dispatch its thumbnail job."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import Connection

from app.auth import quotas
from app.auth.principal import Principal
from app.config import Settings
from app.errors import InvalidRequest, ServiceUnavailable
from app.images import repository, tokens
from app.images.cache import CachedImage
from app.images.errors import InvalidFileFormat, QuotaExceeded
from app.images.filenames import safe_filename
from app.images.idempotency import IdempotencyKey, Replays, replay_body
from app.images.ingest import ReceivedFile
from app.images.options import UploadOptions
from app.images.presenter import ImagePresenter
from app.images.schemas import ImageUploaded
from app.images.validation import Limits, ProcessedUpload, process_upload
from app.infra import tracing
from app.infra.cpu import CpuPool, WorkerCrashed
from app.infra.db import Database, RunAsync
from app.infra.metrics import UPLOAD_BYTES, UPLOADS
from app.infra.replicas import Reads
from app.jobs.queue import JobQueue
from app.models import TagsStatus, ThumbnailStatus
from app.models.base import utcnow
from app.models.blob import object_key
from app.storage import Storage

log = logging.getLogger(__name__)

UPLOADS_ACCEPTED = UPLOADS.labels(result="accepted")


class ImageWriter:
    """Stores received files as images, each in one unit of work, charged to its owner."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        reads: Reads,
        storage: Storage,
        cpu: CpuPool,
        queue: JobQueue,
        presenter: ImagePresenter,
        replays: Replays,
    ) -> None:
        self.settings = settings
        self.database = database
        self.reads = reads
        self.storage = storage
        # Validation decodes images in at most one process per core: bounded CPU and memory.
        self.cpu = cpu
        self.queue = queue  # thumbnail jobs, dispatched after each upload commits
        self.presenter = presenter
        self.replays = replays
        self._limits = Limits.from_settings(settings)
        # Automatic tags come from a job after the thumbnails, unless there is no tagger.
        self._tags_status = TagsStatus.DISABLED if settings.tagger == "none" else TagsStatus.PENDING

    async def require_room(self, user_id: uuid.UUID, size: int) -> None:
        """Refuse `size` more bytes the user has no room for (checked again on commit)."""
        async with self.database.reader() as session:
            usage = await quotas.usage(session, user_id, self.settings.default_quota_bytes)
        if not usage.has_room(size):
            raise QuotaExceeded(*usage)

    async def store(
        self,
        received: ReceivedFile,
        caller: Principal,
        base_url: str,
        remember: IdempotencyKey | None,
        options: UploadOptions,
    ) -> ImageUploaded:
        """Store one file part as a new image; its upload response."""
        if received.size == 0:
            raise InvalidRequest("The file part is empty")
        processed = await self._process(received)
        owner_id = caller.user_id
        token, token_digest = tokens.new_delete_token() if owner_id is None else (None, None)
        image = _new_image(received, processed, owner_id, options, self._tags_status)
        response = self.presenter.uploaded(image, base_url, token)
        key = object_key(processed.sha256)
        if owner_id is not None:  # refused before the object is stored
            await self.require_room(owner_id, processed.size)
        # The heavy write happens before the lock (SQLite has one writer for everything);
        # under the lock we only check that the object is still there.
        if await self.storage.stat(key) is None:
            await self.storage.put_file(key, processed.path, processed.info.content_type)
        replay = replay_body(response, remember) if remember is not None else None

        def claim_blob_and_insert_image(connection: Connection, run_async: RunAsync) -> None:
            claimed_new = repository.claim_blob(
                connection, processed.sha256, processed.size, processed.info.content_type
            )
            try:
                if run_async(self.storage.stat, key) is None:
                    # The last image with these bytes was deleted between our write and our
                    # claim, taking the object with it. Nothing refers to it: retry is safe.
                    raise ServiceUnavailable("The upload raced a delete; retry it", retry_after=1)
                if owner_id is not None:
                    self._charge(connection, owner_id, processed.size)
                repository.insert_image(connection, image, owner_id, token_digest)
                if processed.camera.present:
                    repository.insert_exif(connection, image.id, processed.camera)
                if remember is not None and replay is not None:
                    self.replays.remember(connection, remember, replay)
            except BaseException:
                # Still under the blob lock: a new blob's object is referenced by no one.
                if claimed_new:
                    run_async(self.storage.delete, key)
                raise

        await self.database.write(claim_blob_and_insert_image)
        if owner_id is not None:
            await self.reads.wrote(user_id=owner_id)  # the owner's listing shows it at once
        log.info("image uploaded", extra={"image_id": str(image.id), "bytes": image.file_size})
        # Only now that the row is committed: a job must never find it missing. A lost
        # dispatch leaves the row pending for the sweeper.
        await self.queue.dispatch(image.id, tracing.current_carrier())
        UPLOADS_ACCEPTED.inc()
        UPLOAD_BYTES.inc(image.file_size)
        return response

    async def _process(self, received: ReceivedFile) -> ProcessedUpload:
        """The checked (and, for location metadata, stripped) bytes, in a worker process."""
        try:
            return await self.cpu.run(process_upload, received.path, received.sha256, self._limits)
        except WorkerCrashed as exc:
            raise InvalidFileFormat("The file could not be decoded safely") from exc

    def _charge(self, connection: Connection, owner_id: uuid.UUID, size: int) -> None:
        """Count the bytes against the owner's quota in the upload's transaction."""
        default = self.settings.default_quota_bytes
        if not quotas.charge(connection, owner_id, size, default):
            raise QuotaExceeded(*quotas.usage_in(connection, owner_id, default))


def _new_image(
    received: ReceivedFile,
    processed: ProcessedUpload,
    owner_id: uuid.UUID | None,
    options: UploadOptions,
    tags_status: str,
) -> CachedImage:
    """The record of the image about to be stored: new, its thumbnails pending."""
    return CachedImage(
        id=uuid.uuid4(),
        filename=safe_filename(received.filename, processed.info.format),
        content_type=processed.info.content_type,
        file_size=processed.size,
        width=processed.info.width,
        height=processed.info.height,
        frames=processed.info.frames,
        sha256=processed.sha256,
        created_at=utcnow(),
        thumbnail_status=ThumbnailStatus.PENDING,
        owner_id=owner_id,
        visibility=options.visibility,
        expires_at=options.expires_at,
        title=options.title,
        description=options.description,
        tags_status=tags_status,
    )
