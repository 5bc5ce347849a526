"""`chitram reconcile`: make metadata rows and stored objects agree again."""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
from sqlalchemy import Connection

from app.auth import quotas
from app.images import repository
from app.images.ingest import clear_stale_spool
from app.infra.db import RunAsync
from app.models.base import utcnow
from app.models.blob import object_key
from app.models.thumbnail import thumbnail_key
from app.wiring import Resources

log = logging.getLogger(__name__)
ORIGINALS = "originals/"
THUMBNAILS = "thumbnails/"


@dataclass
class ReconcileReport:
    """What was found (and, unless a dry run, repaired)."""

    dry_run: bool
    objects_without_row: list[str] = field(default_factory=list)
    rows_without_object: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)
    unreferenced_rows: list[str] = field(default_factory=list)
    thumbnail_objects_without_row: list[str] = field(default_factory=list)
    thumbnail_rows_without_object: list[str] = field(default_factory=list)
    thumbnails_requeued: list[str] = field(default_factory=list)
    idempotency_purged: int = 0
    # Spool files (`upload-*` under DATA_DIR/tmp) over an hour old: left by killed uploads.
    stale_spool_files: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.objects_without_row
            or self.rows_without_object
            or self.unreferenced_rows
            or self.thumbnail_objects_without_row
            or self.thumbnail_rows_without_object
        )


async def reconcile(resources: Resources, *, dry_run: bool) -> ReconcileReport:
    """Find and repair drift between the blobs table and the object store.

    Objects younger than the grace period are left alone: they may belong to an upload
    whose row is not committed yet.
    """
    report = ReconcileReport(dry_run=dry_run)
    grace_start = utcnow() - timedelta(seconds=resources.settings.reconcile_grace_seconds)
    async with resources.database.reader() as session:
        known = await repository.all_blob_keys(session)
        unreferenced = await repository.orphan_blob_rows(session)
    seen: set[str] = set()
    async for info in resources.storage.list(ORIGINALS):
        sha256 = info.key.rsplit("/", 1)[-1]
        is_canonical = info.key == object_key(sha256)
        if is_canonical:
            seen.add(sha256)
        if not (is_canonical and sha256 in known) and info.last_modified < grace_start:
            report.objects_without_row.append(info.key)
            if not dry_run:
                await _remove_object_if_unclaimed(resources, sha256, info.key)
    for sha256 in sorted(known - seen):
        report.rows_without_object.append(sha256)
        if not dry_run:
            report.images_removed += await _drop_rows_of_missing_object(resources, sha256)
    for sha256 in unreferenced:
        if sha256 in seen:  # rows whose object is missing were handled above
            report.unreferenced_rows.append(sha256)
            if not dry_run:
                await _remove_unreferenced_blob(resources, sha256)
    await _reconcile_thumbnails(resources, report, grace_start)
    for image_id in (*report.images_removed, *report.thumbnails_requeued):
        await resources.cache.invalidate(uuid.UUID(image_id))  # a shared cache
    report.stale_spool_files = await anyio.to_thread.run_sync(
        functools.partial(clear_stale_spool, resources.settings.tmp_dir, dry_run=dry_run)
    )
    if not dry_run:
        cutoff = utcnow() - timedelta(seconds=resources.settings.idempotency_ttl_seconds)
        report.idempotency_purged = await resources.database.write(
            lambda connection, _: repository.purge_idempotency(connection, cutoff)
        )
    return report


async def _remove_object_if_unclaimed(resources: Resources, sha256: str, key: str) -> None:
    if key == object_key(sha256):
        # An upload may claim these bytes again while we remove them: see
        # ImageService.remove_unclaimed_objects.
        removed = await resources.images.remove_unclaimed_objects(sha256, [key])
    else:  # not a name we would write: nothing can claim it
        await resources.storage.delete(key)
        removed = True
    if removed:
        log.warning("removed object without a row", extra={"key": key})


async def _drop_rows_of_missing_object(resources: Resources, sha256: str) -> list[str]:
    def drop(connection: Connection, run_async: RunAsync) -> list[str]:
        repository.lock_blob(connection, sha256)
        if run_async(resources.storage.stat, object_key(sha256)) is not None:
            return []  # re-uploaded since we looked
        removed = repository.delete_images_of_blob(connection, sha256)
        for _, owner_id, size in removed:
            if owner_id is not None:  # the bytes are gone: they no longer count
                quotas.refund(connection, owner_id, size)
        repository.delete_blob(connection, sha256)
        return [str(image_id) for image_id, _, _ in removed]

    removed = await resources.database.write(drop)
    if removed:
        log.error("object missing: removed its rows", extra={"sha256": sha256, "images": removed})
    return removed


async def _remove_unreferenced_blob(resources: Resources, sha256: str) -> None:
    def remove(connection: Connection, run_async: RunAsync) -> None:
        repository.lock_blob(connection, sha256)
        if repository.count_blob_references(connection, sha256):
            return
        repository.delete_blob(connection, sha256)
        run_async(resources.storage.delete, object_key(sha256))

    await resources.database.write(remove)


async def _reconcile_thumbnails(
    resources: Resources, report: ReconcileReport, grace_start: datetime
) -> None:
    """Thumbnail objects nobody records are removed; recorded thumbnails whose objects
    are missing are forgotten, and their images go back to pending for the sweeper."""
    async with resources.database.reader() as session:
        rows = set(await repository.thumbnail_rows(session))
    seen: set[tuple[str, str]] = set()
    async for info in resources.storage.list(THUMBNAILS):
        parts = info.key.split("/")
        blob, size = parts[-2], parts[-1].removesuffix(".webp")
        if len(parts) == 5 and info.key == thumbnail_key(blob, size):
            seen.add((blob, size))
            if (blob, size) in rows:
                continue
        if info.last_modified < grace_start:
            report.thumbnail_objects_without_row.append(info.key)
            if not report.dry_run:
                await _remove_thumbnail_if_unclaimed(resources, blob, size, info.key)
    for blob in sorted({blob for blob, size in rows - seen}):
        report.thumbnail_rows_without_object.append(blob)
        if not report.dry_run:
            requeued = await resources.database.write(functools.partial(_reset, blob=blob))
            report.thumbnails_requeued += [str(image_id) for image_id in requeued]


def _reset(connection: Connection, _run_async: RunAsync, *, blob: str) -> list[uuid.UUID]:
    repository.lock_blob(connection, blob)
    return repository.reset_thumbnails(connection, blob)


async def _remove_thumbnail_if_unclaimed(
    resources: Resources, blob: str, size: str, key: str
) -> None:
    def remove(connection: Connection, run_async: RunAsync) -> bool:
        # Under the blob lock, so a job that is saving this thumbnail right now either
        # committed its row already (kept) or will find the blob row gone or the object
        # missing and redo it.
        if repository.lock_blob(connection, blob) and repository.has_thumbnail(
            connection, blob, size
        ):
            return False
        run_async(resources.storage.delete, key)
        return True

    if await resources.database.write(remove):
        log.warning("removed thumbnail without a row", extra={"key": key})
