"""The thumbnail job: what one attempt does, whichever queue delivered it.

The image row is the durable record. It is written `pending` in the upload's own
transaction; a job only ever moves it forward (`ready` or `failed`), and a job may run
any number of times, anywhere, concurrently with itself:

- each attempt is counted in the row before any work, so an image that crashes its
  worker still runs out of attempts (`THUMBNAIL_MAX_ATTEMPTS`) and ends `failed`;
- thumbnails belong to the blob (identical uploads share them), under deterministic
  keys, and their rows are upserts: a second run rewrites the same bytes;
- the rows are written with the blob row locked, the same lock a delete takes, so a
  thumbnail can never outlive the last image of its blob: when the blob is gone by
  then, the job removes what it just stored.

A queue runs `ThumbnailJobs.run`; the sweeper (`stale`) finds rows a crash left behind.
Once its images are settled (ready or failed) and committed, the job asks for their tag
jobs (`then`), handing over the pixel features it read on the way (app.jobs.tagging).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from hashlib import sha256 as sha256_of
from pathlib import Path

from sqlalchemy import Connection

from app.config import Settings
from app.errors import ServiceUnavailable
from app.images import repository
from app.images.thumbnails import CONTENT_TYPE, THUMBNAIL_SIZES, ThumbnailError, render
from app.infra import tracing
from app.infra.cpu import CpuPool, PoolUnavailable, WorkerCrashed
from app.infra.db import Database, RunAsync
from app.infra.metrics import THUMBNAIL_JOB_SECONDS, THUMBNAIL_JOBS
from app.jobs.outcomes import Hint, Outcome, Result, retry_delay
from app.models.base import utcnow
from app.models.blob import object_key
from app.models.thumbnail import thumbnail_key
from app.storage import Storage
from app.storage.base import ObjectNotFound, StorageError

log = logging.getLogger(__name__)
SWEEP_BATCH = 1000

Changed = Callable[[uuid.UUID], Awaitable[None]]
# Called with images whose thumbnails are settled, after the commit; never raises.
FollowUp = Callable[[Sequence[uuid.UUID], Hint | None], Awaitable[None]]


# Failures worth another attempt. Anything else is a bug: it propagates, the queue logs
# it, and the sweeper retries the row later, still bounded by its attempt count.
RETRYABLE = (
    ThumbnailError,
    WorkerCrashed,
    PoolUnavailable,
    ServiceUnavailable,
    StorageError,
    OSError,
)


class ThumbnailJobs:
    """Makes the thumbnails of one image per call; shared by every queue implementation."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        storage: Storage,
        cpu: CpuPool,
        changed: Changed | None = None,
        then: FollowUp | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.cpu = cpu
        self.changed = changed
        self.then = then

    async def run(
        self, image_id: uuid.UUID, link: Mapping[str, str] | None = None, hint: Hint | None = None
    ) -> Result:
        """One attempt at the image's thumbnails; `link` is the span context of the
        request that queued it (traced as a link: the job is a trace of its own); it
        takes no `hint`."""
        started = time.perf_counter()
        async with tracing.job_span("thumbnail job", link, **{"chitram.image_id": str(image_id)}):
            result = await self._run(image_id)
        THUMBNAIL_JOBS.labels(result=result.outcome).inc()
        if result.outcome is not Outcome.SKIPPED:
            THUMBNAIL_JOB_SECONDS.observe(time.perf_counter() - started)
        return result

    async def _run(self, image_id: uuid.UUID) -> Result:
        claim = await self.database.write(
            lambda connection, _: repository.start_thumbnail_attempt(connection, image_id)
        )
        if claim is None:
            return Result(Outcome.SKIPPED)
        blob, attempt = claim
        max_attempts = self.settings.thumbnail_max_attempts
        if attempt > max_attempts:
            # Earlier attempts died with their process (a crash, a kill): give up.
            return await self._fail(image_id, attempt - 1, "attempts exhausted by crashes")
        try:
            ready, features = await self._make(blob)
        except RETRYABLE as exc:
            if attempt >= max_attempts:
                return await self._fail(image_id, attempt, repr(exc))
            delay = self.retry_delay(attempt)
            log.warning(
                "thumbnail attempt failed; retrying",
                extra={"image_id": str(image_id), "attempt": attempt, "retry_in": delay},
                exc_info=not isinstance(exc, ThumbnailError),
            )
            return Result(Outcome.RETRY, delay)
        for changed_id in ready:
            await self._changed(changed_id)
        if ready and self.then is not None:
            await self.then(ready, features)
        if image_id not in ready:
            return Result(Outcome.SKIPPED)  # the image was deleted while we worked
        log.info("thumbnails ready", extra={"image_id": str(image_id), "attempt": attempt})
        return Result(Outcome.READY)

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff: base, 4x base, 16x base ... capped at ten minutes."""
        return retry_delay(self.settings, attempt)

    async def _make(self, blob: str) -> tuple[list[uuid.UUID], Hint | None]:
        """Make (or find) the blob's thumbnails and mark its pending images ready; those
        images, and the features read from the pixels when they were decoded here."""
        async with self.database.reader() as session:
            existing = await repository.thumbnails_of_blob(session, blob)
        if {row.size for row in existing} >= set(THUMBNAIL_SIZES):
            ready = await self.database.write(
                lambda connection, _: repository.mark_blob_images_ready(connection, blob)
            )
            return ready, None
        key = object_key(blob)
        try:
            # A file on this machine is read by the CPU worker itself: a 12 MP original
            # then never crosses the pipe to it (that copy cost a tenth of the job).
            source: bytes | Path = await self.storage.local_path(key) or (
                await self.storage.get_bytes(key)
            )
        except ObjectNotFound:
            # Its last image was deleted (or the object lost: reconcile's business).
            return [], None
        rendered = await self.cpu.run(
            render, source, self.settings.allowed_formats, self.settings.max_image_pixels
        )
        del source
        rows = []
        for thumb in rendered.thumbnails:
            await self.storage.put_bytes(thumbnail_key(blob, thumb.size), thumb.data, CONTENT_TYPE)
            rows.append(
                {
                    "size": thumb.size,
                    "sha256": sha256_of(thumb.data).hexdigest(),
                    "file_size": len(thumb.data),
                    "width": thumb.width,
                    "height": thumb.height,
                    # The blob's placeholder rides on its smallest thumbnail's row.
                    "placeholder": rendered.placeholder if thumb.size == "small" else None,
                }
            )

        def save(connection: Connection, run_async: RunAsync) -> list[uuid.UUID]:
            if not repository.lock_blob(connection, blob):
                # Deleted while we worked: what we stored belongs to nobody.
                for size in THUMBNAIL_SIZES:
                    run_async(self.storage.delete, thumbnail_key(blob, size))
                return []
            return repository.save_thumbnails(connection, blob, rows)

        return await self.database.write(save), rendered.features.as_hint()

    async def _fail(self, image_id: uuid.UUID, attempts: int, reason: str) -> Result:
        changed = await self.database.write(
            lambda connection, _: repository.fail_thumbnail(connection, image_id)
        )
        if changed:
            log.error(
                "thumbnails failed",
                extra={"image_id": str(image_id), "attempts": attempts, "reason": reason},
            )
            await self._changed(image_id)
            if self.then is not None:
                await self.then([image_id], None)  # its tag job settles the tags too
        return Result(Outcome.FAILED)

    async def _changed(self, image_id: uuid.UUID) -> None:
        if self.changed is not None:
            await self.changed(image_id)

    async def stale(self, *, everything: bool = False) -> list[uuid.UUID]:
        """Pending images no job has touched for `THUMBNAIL_STALE_SECONDS` (all pending
        images with `everything`: at start-up, when no job of ours can be running)."""
        quiet_since = None
        if not everything:
            quiet_since = utcnow() - timedelta(seconds=self.settings.thumbnail_stale_seconds)
        async with self.database.reader() as session:
            return await repository.stale_pending_images(session, quiet_since, SWEEP_BATCH)
