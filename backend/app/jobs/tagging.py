"""The tag job: automatic tags for one image, after its thumbnails, whichever queue ran it.

It follows the thumbnail job's rules (see `app.jobs.thumbnails`): the image row is the
durable record (`tags_status` pending until a job settles it ready or failed); each
attempt is counted in the row before any work, so an image that kills its worker still
runs out of attempts (`THUMBNAIL_MAX_ATTEMPTS`, the same backoff); the result is written
only while the row still waits for it, so a job that runs twice, or concurrently with
itself, changes nothing the second time. A tagger failure never touches the upload or
its thumbnails: the tags end `failed`, that is all.

The thumbnail job asks for the tag job once its images are settled, and hands over the
pixel features it read from the lossless decoded image (`app.tagging.features`): the
basic tagger then decodes nothing. Without them (a tag job the sweeper found, images
from before automatic tags, identical bytes whose thumbnails existed) the job reads them
from the original, in the CPU pool. With `TAGGER=none` there are no tag jobs; the sweeper
only marks images still waiting (from before) as disabled.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from io import BytesIO
from pathlib import Path

from PIL import Image
from sqlalchemy import Connection

from app.config import Settings
from app.errors import ServiceUnavailable
from app.images import repository
from app.images.thumbnails import ThumbnailError, displayed
from app.infra import tracing
from app.infra.cpu import CpuPool, PoolUnavailable, WorkerCrashed
from app.infra.db import Database
from app.infra.metrics import TAGGER_JOBS
from app.jobs.outcomes import Hint, Outcome, Result, retry_delay
from app.jobs.queue import JobQueue
from app.jobs.thumbnails import FollowUp
from app.models import ThumbnailStatus
from app.models.base import utcnow
from app.models.blob import object_key
from app.models.thumbnail import thumbnail_key
from app.storage import Storage
from app.storage.base import ObjectNotFound, StorageError
from app.tagging.base import Tagger, TaggerError, TagInput, clean_tags
from app.tagging.features import ImageFeatures, features_of

log = logging.getLogger(__name__)
SWEEP_BATCH = 1000
JPEG_QUALITY = 85

Changed = Callable[[uuid.UUID], Awaitable[None]]

# Failures worth another attempt; anything else is a bug, left to the sweeper (still
# bounded by the attempt count).
RETRYABLE = (
    TaggerError,
    ThumbnailError,
    WorkerCrashed,
    PoolUnavailable,
    ServiceUnavailable,
    StorageError,
    OSError,
)


class TagJobs:
    """Tags one image per call with `tagger` (None: `TAGGER=none`, no tags at all)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        storage: Storage,
        cpu: CpuPool,
        tagger: Tagger | None,
        changed: Changed | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.cpu = cpu
        self.tagger = tagger
        self.changed = changed

    async def run(
        self,
        image_id: uuid.UUID,
        link: Mapping[str, str] | None = None,
        hint: Hint | None = None,
    ) -> Result:
        """One attempt at the image's tags; `hint` is what its thumbnail job read from
        the pixels (`ImageFeatures.as_hint`), if it ran here or sent it along."""
        async with tracing.job_span("tag job", link, **{"chitram.image_id": str(image_id)}):
            result = await self._run(image_id, ImageFeatures.from_hint(hint))
        TAGGER_JOBS.labels(result=result.outcome).inc()
        return result

    async def _run(self, image_id: uuid.UUID, features: ImageFeatures | None) -> Result:
        if self.tagger is None:
            return Result(Outcome.SKIPPED)  # never queued; the sweeper disables the row
        claimed = await self.database.write(lambda connection, _: _claim(connection, image_id))
        if claimed is None:
            return Result(Outcome.SKIPPED)
        (blob, attempt, width, height, frames, thumbnail_status), camera = claimed
        max_attempts = self.settings.thumbnail_max_attempts
        if attempt > max_attempts:
            return await self._fail(image_id, attempt - 1, "attempts exhausted by crashes")
        if thumbnail_status == ThumbnailStatus.FAILED:
            # Every tagger reads the pixels, which its thumbnail job could not decode.
            return await self._fail(image_id, attempt, "its thumbnails failed")
        image = TagInput(width, height, frames, camera, StoredPixels(self, blob, features))
        try:
            tags = clean_tags(await self.tagger.tag(image), self.settings.tagger_max_tags)
        except RETRYABLE as exc:
            if attempt >= max_attempts:
                return await self._fail(image_id, attempt, repr(exc))
            delay = retry_delay(self.settings, attempt)
            log.warning(
                "tag attempt failed; retrying",
                extra={"image_id": str(image_id), "attempt": attempt, "retry_in": delay},
                exc_info=not isinstance(exc, TaggerError | ThumbnailError),
            )
            return Result(Outcome.RETRY, delay)
        saved = await self.database.write(
            lambda connection, _: repository.save_auto_tags(connection, image_id, tags)
        )
        if not saved:
            return Result(Outcome.SKIPPED)  # deleted, or settled by another run meanwhile
        await self._changed(image_id)
        log.info("tags ready", extra={"image_id": str(image_id), "tags": len(tags)})
        return Result(Outcome.READY)

    async def _fail(self, image_id: uuid.UUID, attempts: int, reason: str) -> Result:
        changed = await self.database.write(
            lambda connection, _: repository.fail_tags(connection, image_id)
        )
        if changed:
            log.error(
                "tags failed",
                extra={"image_id": str(image_id), "attempts": attempts, "reason": reason},
            )
            await self._changed(image_id)
        return Result(Outcome.FAILED)

    async def _changed(self, image_id: uuid.UUID) -> None:
        if self.changed is not None:
            await self.changed(image_id)

    async def stale(self, *, everything: bool = False) -> list[uuid.UUID]:
        """Images waiting for tags, their thumbnails settled, that no tag job has touched
        for `THUMBNAIL_STALE_SECONDS` (all of them with `everything`, at start-up). With
        `TAGGER=none` it marks them disabled instead, and finds none."""
        if self.tagger is None:
            await self._disable_waiting()
            return []
        quiet_since = None
        if not everything:
            quiet_since = utcnow() - timedelta(seconds=self.settings.thumbnail_stale_seconds)
        async with self.database.reader() as session:
            return await repository.stale_pending_tags(session, quiet_since, SWEEP_BATCH)

    async def _disable_waiting(self) -> None:
        disabled = await self.database.write(
            lambda connection, _: repository.disable_pending_tags(connection, SWEEP_BATCH)
        )
        for image_id in disabled:
            await self._changed(image_id)

    async def close(self) -> None:
        if self.tagger is not None:
            await self.tagger.close()


def _claim(connection: Connection, image_id: uuid.UUID) -> tuple[repository.TagClaim, bool] | None:
    """Count the attempt and read whether a camera took it, in one unit (one round trip
    less: the tag job's database work is most of its cost)."""
    claim = repository.start_tags_attempt(connection, image_id)
    if claim is None:
        return None
    return claim, repository.has_camera_exif_in(connection, image_id)


def after_thumbnails(queue: JobQueue) -> FollowUp:
    """What a thumbnail job calls once its images are settled: their tag jobs, with the
    features it read (a dispatch never raises)."""

    async def follow(image_ids: Sequence[uuid.UUID], hint: Hint | None) -> None:
        trace = tracing.current_carrier()  # the thumbnail job's span, linked from theirs
        for image_id in image_ids:
            await queue.dispatch(image_id, trace, hint=hint)

    return follow


class StoredPixels:
    """A tag job's view of the image's pixels: the features its thumbnail job handed
    over, else read from the original; a small JPEG from the large thumbnail, else from
    the original. The CPU work runs in the pool, as all decoding of uploads does."""

    def __init__(self, jobs: TagJobs, blob: str, features: ImageFeatures | None) -> None:
        self.jobs = jobs
        self.blob = blob
        self._features = features

    async def features(self) -> ImageFeatures:
        if self._features is None:
            log.info("tag job reads the original", extra={"blob": self.blob})
            settings = self.jobs.settings
            source = await self._original()
            self._features = await self.jobs.cpu.run(
                features_of_original, source, settings.allowed_formats, settings.max_image_pixels
            )
        return self._features

    async def jpeg(self, max_side: int) -> bytes:
        try:
            large = await self.jobs.storage.get_bytes(thumbnail_key(self.blob, "large"))
        except ObjectNotFound:
            settings = self.jobs.settings
            source = await self._original()
            return await self.jobs.cpu.run(
                jpeg_of_original,
                source,
                settings.allowed_formats,
                settings.max_image_pixels,
                max_side,
            )
        return await self.jobs.cpu.run(jpeg_of_thumbnail, large, max_side)

    async def _original(self) -> bytes | Path:
        key = object_key(self.blob)
        storage = self.jobs.storage
        return await storage.local_path(key) or await storage.get_bytes(key)


# ---- in the CPU pool ------------------------------------------------------------------


def features_of_original(
    source: bytes | Path, allowed_formats: tuple[str, ...], max_pixels: int
) -> ImageFeatures:
    return features_of(displayed(source, allowed_formats, max_pixels))


def jpeg_of_original(
    source: bytes | Path, allowed_formats: tuple[str, ...], max_pixels: int, max_side: int
) -> bytes:
    return _jpeg(displayed(source, allowed_formats, max_pixels), max_side)


def jpeg_of_thumbnail(webp: bytes, max_side: int) -> bytes:
    """The first frame of one of our own WebP thumbnails as a small JPEG."""
    try:
        with Image.open(BytesIO(webp), formats=["WEBP"]) as image:
            image.load()
            return _jpeg(image, max_side)
    except (OSError, ValueError) as exc:
        raise ThumbnailError(f"cannot read the thumbnail: {exc}") from exc


def _jpeg(image: Image.Image, max_side: int) -> bytes:
    """`image` at most `max_side` a side, transparency flattened onto white, as JPEG."""
    image = image.convert("RGBA")
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel("A"))
    out = BytesIO()
    flat.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
