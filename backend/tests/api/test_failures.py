"""Failures below the API: a bug is a clean 500, a dead dependency a 503."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.storage import StorageUnavailable
from app.storage.memory import MemoryStorage
from tests.support import images
from tests.support.app import app_client

pytestmark = pytest.mark.anyio


class BrokenStorage(MemoryStorage):
    """A storage whose reads fail: with a bug, or because the backend is unreachable."""

    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.failure = failure

    async def get_bytes(self, key: str) -> bytes:
        raise self.failure

    async def ping(self) -> None:
        raise self.failure


@asynccontextmanager
async def _client_for(
    settings: Settings, storage: MemoryStorage
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(
        settings, storage=storage, base_url="http://t", raise_app_exceptions=False
    ) as client:
        yield client


async def _upload_then_get(settings: Settings, storage: MemoryStorage) -> httpx.Response:
    async with _client_for(settings, storage) as client:
        created = await client.post(
            "/api/v1/images/upload", files={"file": ("a.png", images.png(), "image/png")}
        )
        assert created.status_code == 201
        return await client.get(created.json()["url"], headers={"X-Request-ID": "trace-me"})


async def test_a_bug_is_a_500_without_its_text(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    response = await _upload_then_get(settings, BrokenStorage(RuntimeError("secret detail")))
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-me"
    assert response.json() == {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Internal server error",
            "details": {},
            "request_id": "trace-me",
        }
    }
    assert "secret detail" not in response.text
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.request_id == "trace-me"  # type: ignore[attr-defined]


async def test_unreachable_storage_is_a_503_and_health_says_so(settings: Settings) -> None:
    storage = BrokenStorage(StorageUnavailable())
    response = await _upload_then_get(settings, storage)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"]
    async with _client_for(settings, storage) as client:
        health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["components"]["storage"]["status"] == "down"


@pytest.mark.parametrize(
    ("environment", "changes"),
    [
        ("production", {}),  # unset: the public development default
        ("test", {}),  # "outside development" is everything but development
        ("production", {"jwt_secret": ""}),
        ("production", {"jwt_secret": "s" * 31}),  # shorter than SHA-256's output
        ("production", {"jwt_secret": "s" * 40, "jwt_algorithm": "HS512"}),
    ],
)
def test_outside_development_weak_jwt_secrets_are_refused(
    tmp_path: Path, environment: str, changes: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(_env_file=None, environment=environment, data_dir=tmp_path, **changes)  # type: ignore[arg-type]


def test_strong_secrets_and_development_start(tmp_path: Path) -> None:
    Settings(_env_file=None, environment="production", data_dir=tmp_path, jwt_secret="s" * 32)
    Settings(
        _env_file=None,
        environment="production",
        data_dir=tmp_path,
        jwt_secret="s" * 64,
        jwt_algorithm="HS512",
    )
    assert Settings(_env_file=None, data_dir=tmp_path).environment == "development"


def test_a_copy_with_another_database_url_uses_it(tmp_path: Path) -> None:
    first = Settings(_env_file=None, data_dir=tmp_path)
    assert first.resolved_database_url.startswith("sqlite+aiosqlite:///")
    other = first.model_copy(update={"database_url": "postgresql+asyncpg://db/x"})
    assert other.resolved_database_url == "postgresql+asyncpg://db/x"
