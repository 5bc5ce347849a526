"""Migrating a database that already holds images, from the head before the library
(0005) to today's, keeps every image readable with the new fields (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.ops.cli import BACKEND_DIR
from tests.conftest import PG_ADMIN_DSN, _pg_admin
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.app import app_client
from tests.support.flows import register

pytestmark = pytest.mark.anyio
BEFORE_THE_LIBRARY = "0005"


def _upgrade(url: str, revision: str) -> None:
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(BACKEND_DIR / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    if database_kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'chitram.db'}"
        return
    request_name = f"chitram_test_upgrade_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{request_name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{request_name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{request_name}" WITH (FORCE)'))


async def _seed(url: str, owner_id: uuid.UUID, image_id: uuid.UUID) -> None:
    """An owned image as revision 0005 stored it, with its thumbnails ready."""
    engine = create_async_engine(url)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    sha = "ab" * 32
    stamp = now.replace(tzinfo=None) if url.startswith("sqlite") else now
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, storage_used, created_at) "
                    "VALUES (:id, 'old@example.com', 'x', 10, :now)"
                ),
                {"id": owner_id if not url.startswith("sqlite") else owner_id.hex, "now": stamp},
            )
            await conn.execute(
                text(
                    "INSERT INTO blobs (sha256, size, content_type, created_at) "
                    "VALUES (:sha, 10, 'image/png', :now)"
                ),
                {"sha": sha, "now": stamp},
            )
            ids = (
                (image_id, owner_id)
                if not url.startswith("sqlite")
                else (image_id.hex, owner_id.hex)
            )
            await conn.execute(
                text(
                    "INSERT INTO images (id, blob_sha256, filename, content_type, file_size, "
                    "width, height, frames, owner_id, thumbnail_status, thumbnail_attempts, "
                    "thumbnail_updated_at, created_at) VALUES (:id, :sha, "
                    "'Holiday_beach-2019.png', 'image/png', 10, 4, 3, 1, :owner, 'ready', 1, "
                    ":now, :now)"
                ),
                {"id": ids[0], "owner": ids[1], "sha": sha, "now": stamp},
            )
    finally:
        await engine.dispose()


async def test_an_existing_image_survives_the_library_migration(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path / "data",
        database_url=database_url,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Alembic's env runs its own event loop: in a thread, beside the test's.
    await anyio.to_thread.run_sync(_upgrade, database_url, BEFORE_THE_LIBRARY)
    owner_id, image_id = uuid.uuid4(), uuid.uuid4()
    await _seed(database_url, owner_id, image_id)
    await anyio.to_thread.run_sync(_upgrade, database_url, "head")
    async with app_client(settings) as client:
        body = (await client.get(f"/api/v1/images/{image_id}")).json()
        assert body["filename"] == "Holiday_beach-2019.png"
        assert body["visibility"] == "unlisted"
        assert body["expires_at"] is None
        assert body["title"] is None
        assert body["description"] is None
        assert body["tags"] == []
        assert body["album_ids"] == []
        # A new account works beside the old rows, and new tables take rows.
        account = await register(client)
        albums = await client.post(
            "/api/v1/albums", json={"title": "After"}, headers=account.headers
        )
        assert albums.status_code == 201, albums.text
