"""Migration 0007 makes the images already stored searchable, and the search index
follows every later write (SQLite: FTS5 triggers; PostgreSQL: the GIN expression index)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, delete, text

from app.images import repository
from app.images.search import Filters
from app.infra.db import Database, RunAsync
from app.models import Image
from app.models.base import UTCDateTime
from app.ops.cli import BACKEND_DIR
from tests.conftest import PG_ADMIN_DSN, _pg_admin

pytestmark = pytest.mark.anyio
BEFORE_SEARCH = "0006"


def _upgrade(url: str, revision: str) -> None:
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(BACKEND_DIR / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    if database_kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'chitram.db'}"
        return
    name = f"chitram_test_search_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Tables as revision 0006 left them: only the columns this test writes.
_USERS = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("password_hash", sa.String()),
    sa.column("storage_used", sa.BigInteger()),
    sa.column("created_at", UTCDateTime()),
)
_BLOBS = sa.table(
    "blobs",
    sa.column("sha256", sa.String()),
    sa.column("size", sa.BigInteger()),
    sa.column("content_type", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
_IMAGES = sa.table(
    "images",
    *(sa.column(name, sa.String()) for name in ("blob_sha256", "filename", "content_type")),
    *(sa.column(name, sa.String()) for name in ("thumbnail_status", "title", "tags_json")),
    *(sa.column(name, sa.Integer()) for name in ("file_size", "width", "height", "frames")),
    sa.column("id", sa.Uuid()),
    sa.column("owner_id", sa.Uuid()),
    sa.column("thumbnail_attempts", sa.Integer()),
    sa.column("created_at", UTCDateTime()),
)


def _seed(
    connection: Connection, owner_id: uuid.UUID, images: dict[uuid.UUID, dict[str, str]]
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    connection.execute(
        sa.insert(_USERS).values(
            id=owner_id, email="old@example.com", password_hash="x", storage_used=0, created_at=now
        )
    )
    connection.execute(
        sa.insert(_BLOBS).values(
            sha256="ab" * 32, size=10, content_type="image/png", created_at=now
        )
    )
    for image_id, fields in images.items():
        connection.execute(
            sa.insert(_IMAGES).values(
                id=image_id,
                owner_id=owner_id,
                blob_sha256="ab" * 32,
                content_type="image/png",
                file_size=10,
                width=4,
                height=3,
                frames=1,
                thumbnail_status="ready",
                thumbnail_attempts=1,
                created_at=now,
                **fields,
            )
        )


async def _search(database: Database, owner_id: uuid.UUID, *words: str) -> set[uuid.UUID]:
    async with database.reader() as session:
        found = await repository.list_images(
            session, owner_id, None, 100, Filters(words=words), datetime.now(UTC)
        )
    return {image.id for image in found}


async def test_stored_images_become_searchable(database_url: str) -> None:
    await anyio.to_thread.run_sync(_upgrade, database_url, BEFORE_SEARCH)
    owner_id, sunset, screenshot = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tags = json.dumps({"user": ["bay area"], "auto": ["landscape"]})
    seeded = {
        sunset: {"filename": "IMG_0001.jpg", "title": "Sunset", "tags_json": tags},
        screenshot: {"filename": "Screenshot 2024-03-01 at 10.22.31.png", "tags_json": "{}"},
    }
    database = Database(database_url)
    try:
        await database.write(lambda connection, _run: _seed(connection, owner_id, seeded))
        await database.dispose()
        await anyio.to_thread.run_sync(_upgrade, database_url, "head")
        database = Database(database_url)

        assert await _search(database, owner_id, "img") == {sunset}
        assert await _search(database, owner_id, "sun", "bay", "land") == {sunset}
        assert await _search(database, owner_id, "2024", "10") == {screenshot}
        assert await _search(database, owner_id, "png") == {screenshot}

        # Later writes keep the index right: a change, then a delete.
        def change(connection: Connection, _run: RunAsync) -> None:
            assert repository.update_image(connection, sunset, owner_id, {"title": "Dawn"})
            connection.execute(delete(Image).where(Image.id == screenshot))

        await database.write(change)
        assert await _search(database, owner_id, "sunset") == set()
        assert await _search(database, owner_id, "dawn") == {sunset}
        assert await _search(database, owner_id, "png") == set()
        if database_url.startswith("sqlite"):
            # FTS5 compares its index with the images table; raises when they differ.
            await database.write(
                lambda connection, _run: connection.execute(
                    text("INSERT INTO images_fts(images_fts, rank) VALUES ('integrity-check', 1)")
                )
            )
    finally:
        await database.dispose()
