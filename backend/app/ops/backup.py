"""`chitram backup` and `chitram restore`: the database's rows and every stored object in
one tar file, portable between SQLite and PostgreSQL and between local disk and S3.

A backup holds `manifest.json`, one JSON-lines file per table (in foreign-key order) and
`objects/<key>` for every object. Rows are read in one transaction, so they are one
consistent snapshot; objects are copied after them, so an object deleted during the
backup may be missing (the restore reports it) and one uploaded during it may be extra
(`chitram reconcile` removes it later). Sessions and idempotency records are transient
and are not kept. A restore needs an empty, migrated database at the same schema
revision: it stores and checks every object first (originals against the SHA-256 in
their key), then inserts the rows, so no row ever points at a missing object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Table, Uuid, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app import __version__
from app.config import Settings
from app.infra.db import Database
from app.models import Base
from app.models.base import UTCDateTime, utcnow
from app.models.blob import object_key
from app.storage import Storage
from app.storage.base import ObjectNotFound
from app.wiring import open_storage

log = logging.getLogger(__name__)
FORMAT = 1
SKIPPED_TABLES = frozenset({"web_sessions", "idempotency_keys"})
BATCH = 500
ORIGINALS = "originals/"


class BackupError(RuntimeError):
    """The backup cannot be made or restored as asked."""


@dataclass
class BackupReport:
    path: str
    revision: str | None
    rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    bytes: int = 0
    missing_objects: list[str] = field(default_factory=list)


def tables() -> list[Table]:
    """What a backup holds, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _decoder(table: Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    uuids = {c.name for c in table.columns if isinstance(c.type, Uuid)}
    times = {c.name for c in table.columns if isinstance(c.type, UTCDateTime)}

    def decode(row: dict[str, Any]) -> dict[str, Any]:
        for name in uuids:
            if row.get(name) is not None:
                row[name] = uuid.UUID(row[name])
        for name in times:
            if row.get(name) is not None:
                row[name] = datetime.fromisoformat(row[name])
        return row

    return decode


# ---- backup -------------------------------------------------------------------------


async def backup(settings: Settings, target: Path) -> BackupReport:
    """Write a backup of this instance to `target` (replaced atomically when done)."""
    storage = await open_storage(settings)
    engine = create_async_engine(settings.resolved_database_url)
    partial = target.with_name(target.name + ".partial")
    try:
        with tarfile.open(partial, "w") as archive:
            async with engine.connect() as connection:
                if connection.dialect.name == "postgresql":  # one snapshot for every table
                    await connection.execution_options(isolation_level="REPEATABLE READ")
                async with connection.begin():
                    report = BackupReport(str(target), await _revision(connection))
                    referenced = await _dump_rows(connection, archive, report)
            archived = await _dump_objects(storage, archive, report)
            report.missing_objects = sorted(referenced - archived)
            _add_bytes(archive, "manifest.json", json.dumps(_manifest(report), indent=2).encode())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
        await engine.dispose()
        await storage.close()
    log.info("backup written", extra={"path": str(target), "objects": report.objects})
    return report


async def _revision(connection: AsyncConnection) -> str | None:
    result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return result.scalar_one_or_none()


async def _dump_rows(
    connection: AsyncConnection, archive: tarfile.TarFile, report: BackupReport
) -> set[str]:
    """Every row as JSON lines; the object keys the rows refer to."""
    referenced: set[str] = set()
    for table in tables():
        count = 0
        with tempfile.TemporaryFile() as spool:
            ordered = select(table).order_by(*table.primary_key.columns)
            async for row in await connection.stream(ordered):
                values = {key: _encode(value) for key, value in row._mapping.items()}
                spool.write(json.dumps(values).encode() + b"\n")
                count += 1
                if table.name == "blobs":
                    referenced.add(object_key(values["sha256"]))
            _add_file(archive, f"db/{table.name}.jsonl", spool)
        report.rows[table.name] = count
    return referenced


async def _dump_objects(
    storage: Storage, archive: tarfile.TarFile, report: BackupReport
) -> set[str]:
    """Every stored object; the keys archived."""
    archived: set[str] = set()
    async for info in storage.list(""):
        with tempfile.TemporaryFile() as spool:
            try:
                async for chunk in storage.stream(info.key):
                    spool.write(chunk)
            except ObjectNotFound:  # deleted since it was listed
                log.warning("object vanished during backup", extra={"key": info.key})
                continue
            size = _add_file(archive, f"objects/{info.key}", spool)
        archived.add(info.key)
        report.objects += 1
        report.bytes += size
    return archived


def _add_file(archive: tarfile.TarFile, name: str, spool: IO[bytes]) -> int:
    size = spool.tell()
    spool.seek(0)
    member = tarfile.TarInfo(name)
    member.size = size
    member.mtime = int(utcnow().timestamp())
    archive.addfile(member, spool)
    return size


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    with tempfile.TemporaryFile() as spool:
        spool.write(data)
        _add_file(archive, name, spool)


def _manifest(report: BackupReport) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "chitram": __version__,
        "created_at": utcnow().isoformat(),
        **asdict(report),
    }


# ---- restore ------------------------------------------------------------------------


async def restore(settings: Settings, source: Path, *, force: bool = False) -> BackupReport:
    """Load a backup into this (migrated, empty) instance; `force` allows non-empty."""
    with tarfile.open(source, "r:") as archive:
        manifest = _read_manifest(archive)
        database = Database(settings.resolved_database_url)
        storage = await open_storage(settings)
        try:
            async with database.engine.connect() as connection:
                revision = await _revision(connection)
                populated = await _populated(connection)
            if manifest.get("revision") != revision:
                raise BackupError(
                    f"the backup is at schema revision {manifest.get('revision')}, this "
                    f"database at {revision}: restore with the matching Chitram version"
                )
            if populated and not force:
                raise BackupError(f"the database is not empty ({populated}); use --force")
            report = BackupReport(str(source), revision)
            rows = {table.name: list(_rows(archive, table)) for table in tables()}
            content_types = {object_key(b["sha256"]): b["content_type"] for b in rows["blobs"]}
            settings.tmp_dir.mkdir(parents=True, exist_ok=True)
            # Objects first, rows after: no row ever points at a missing object.
            await _restore_objects(archive, storage, content_types, settings.tmp_dir, report)
            await database.write(lambda connection, _: _insert_rows(connection, rows))
            report.rows = {name: len(values) for name, values in rows.items()}
        finally:
            await storage.close()
            await database.dispose()
    log.info("backup restored", extra={"path": str(source), "objects": report.objects})
    return report


def _read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = archive.extractfile("manifest.json")
    except KeyError as exc:
        raise BackupError("not a Chitram backup (no manifest.json)") from exc
    assert member is not None
    manifest: dict[str, Any] = json.load(member)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')}")
    return manifest


async def _populated(connection: AsyncConnection) -> str | None:
    for table in tables():
        count = (await connection.execute(select(func.count()).select_from(table))).scalar_one()
        if count:
            return f"{table.name}: {count} rows"
    return None


def _rows(archive: tarfile.TarFile, table: Table) -> Iterator[dict[str, Any]]:
    member = archive.extractfile(f"db/{table.name}.jsonl")
    if member is None:
        return
    decode = _decoder(table)
    for line in member:
        if line.strip():
            yield decode(json.loads(line))


async def _restore_objects(
    archive: tarfile.TarFile,
    storage: Storage,
    content_types: dict[str, str],
    tmp_dir: Path,
    report: BackupReport,
) -> None:
    for member in archive.getmembers():
        if not member.name.startswith("objects/") or not member.isfile():
            continue
        key = member.name.removeprefix("objects/")
        source = archive.extractfile(member)
        assert source is not None
        # Spooled where the local store can move it into place (it renames, not copies).
        spool = tmp_dir / f"restore-{uuid.uuid4().hex}"
        try:
            digest = hashlib.sha256()
            with spool.open("wb") as out:
                while chunk := source.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
            if key.startswith(ORIGINALS) and digest.hexdigest() != key.rsplit("/", 1)[-1]:
                raise BackupError(f"{key} is damaged in the backup (its SHA-256 differs)")
            await storage.put_file(key, spool, content_types.get(key, "image/webp"))
        finally:
            spool.unlink(missing_ok=True)
        report.objects += 1
        report.bytes += member.size


def _insert_rows(connection: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table in tables():
        values = rows[table.name]
        for start in range(0, len(values), BATCH):
            connection.execute(insert(table), values[start : start + BATCH])
