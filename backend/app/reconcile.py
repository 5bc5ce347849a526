"""`chitram reconcile`: make metadata rows and stored objects agree again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from app.images import repository
from app.lifespan import Resources
from app.models.base import utcnow
from app.models.blob import object_key

log = logging.getLogger(__name__)
ORIGINALS = "originals/"


@dataclass
class ReconcileReport:
    """What was found (and, unless a dry run, repaired)."""

    dry_run: bool
    objects_without_row: list[str] = field(default_factory=list)
    rows_without_object: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)
    unreferenced_rows: list[str] = field(default_factory=list)
    idempotency_purged: int = 0

    @property
    def clean(self) -> bool:
        return not (self.objects_without_row or self.rows_without_object or self.unreferenced_rows)


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
    async with resources.database.transaction() as session:
        cutoff = utcnow() - timedelta(seconds=resources.settings.idempotency_ttl_seconds)
        if not dry_run:
            report.idempotency_purged = await repository.purge_idempotency(session, cutoff)
    return report


async def _remove_object_if_unclaimed(resources: Resources, sha256: str, key: str) -> None:
    async with resources.database.transaction() as session:
        if key == object_key(sha256) and await repository.blob_exists_locked(session, sha256):
            return  # an upload claimed it since we looked
        await resources.storage.delete(key)
    log.warning("removed object without a row", extra={"key": key})


async def _drop_rows_of_missing_object(resources: Resources, sha256: str) -> list[str]:
    async with resources.database.transaction() as session:
        await repository.lock_blob(session, sha256)
        if await resources.storage.stat(object_key(sha256)) is not None:
            return []  # re-uploaded since we looked
        images = await repository.images_of_blob(session, sha256)
        for image in images:
            await repository.delete_image(session, image)
        await repository.delete_blob(session, sha256)
    removed = [str(image.id) for image in images]
    log.error("object missing: removed its rows", extra={"sha256": sha256, "images": removed})
    return removed


async def _remove_unreferenced_blob(resources: Resources, sha256: str) -> None:
    async with resources.database.transaction() as session:
        await repository.lock_blob(session, sha256)
        if await repository.count_blob_references(session, sha256):
            return
        await repository.delete_blob(session, sha256)
        await resources.storage.delete(object_key(sha256))
