"""Thumbnails through arq and the machine's Redis: pending, made by a worker, failed, lost."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio

from app import wiring
from app.config import Settings
from app.infra.cpu import CpuPool
from app.infra.db import Database
from app.jobs.outcomes import Outcome
from app.jobs.thumbnails import ThumbnailJobs
from app.jobs.worker import build_worker
from app.models.blob import object_key
from app.storage.factory import build_storage
from tests.support import flows, images
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.app import app_client
from tests.support.metrics import sample
from tests.support.server import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_kind() -> str:
    return "postgres"  # the scaled-out shape


@pytest.fixture
def settings_overrides(redis_url: str, queue_name: str) -> dict[str, object]:
    return {
        "redis_url": redis_url,
        "queue_name": queue_name,
        "redis_prefix": queue_name,
        "thumbnail_retry_base_seconds": 0.01,
    }


@pytest.fixture
async def jobs(settings: Settings) -> AsyncIterator[ThumbnailJobs]:
    """What a `chitram worker` runs, over the same database and storage as the app."""
    database = Database(settings.resolved_database_url)
    storage = await build_storage(settings)
    cpu = CpuPool(1)
    await cpu.start()
    yield ThumbnailJobs(settings, database, storage, cpu)
    cpu.close()
    await storage.close()
    await database.dispose()


async def test_without_a_worker_thumbnails_wait_in_the_queue(client: httpx.AsyncClient) -> None:
    body = await flows.upload_ok(client, images.noisy_jpeg(400, 300), filename="a.jpg")
    response = await client.get(f"/api/v1/images/{body['id']}/thumbnail")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "THUMBNAIL_NOT_READY"
    assert int(response.headers["retry-after"]) > 0
    meta = (await client.get(f"/api/v1/images/{body['id']}")).json()
    assert meta["thumbnail_status"] == "pending"
    assert meta["thumbnails"] == {"small": None, "medium": None, "large": None}
    health = (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["components"]["queue"]["status"] == "up"
    assert health["components"]["queue"]["latency_ms"] is not None
    metrics = (await client.get("/metrics")).text
    assert sample(metrics, "chitram_thumbnail_queue_depth") == 1.0


async def test_a_worker_makes_the_queued_thumbnails(
    client: httpx.AsyncClient, settings: Settings, jobs: ThumbnailJobs
) -> None:
    uploaded = [
        await flows.upload_ok(client, images.noisy_jpeg(500 + i, 300), filename="a.jpg")
        for i in range(3)
    ]
    worker = build_worker(settings, jobs, _redis(settings), burst=True)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    for body in uploaded:
        meta = (await client.get(f"/api/v1/images/{body['id']}")).json()
        assert meta["thumbnail_status"] == "ready"
        assert (await client.get(meta["thumbnails"]["small"])).status_code == 200
    assert sample((await client.get("/metrics")).text, "chitram_thumbnail_queue_depth") == 0.0


async def test_a_corrupt_original_ends_failed_and_the_worker_goes_on(
    client: httpx.AsyncClient, settings: Settings, jobs: ThumbnailJobs
) -> None:
    broken = await flows.upload_ok(client, images.noisy_jpeg(400, 300), filename="a.jpg")
    # The stored bytes rot after the upload (a disk error, an operator's mistake).
    key = object_key(broken["checksum"].removeprefix("sha256:"))
    original = await jobs.storage.get_bytes(key)
    await jobs.storage.put_bytes(key, original[:2000], "image/jpeg")

    outcomes = [(await jobs.run(_uuid(broken))).outcome for _ in range(4)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED, Outcome.SKIPPED]
    response = await client.get(f"/api/v1/images/{broken['id']}/thumbnail")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "THUMBNAIL_FAILED"
    meta = (await client.get(f"/api/v1/images/{broken['id']}")).json()
    assert meta["thumbnail_status"] == "failed"
    assert meta["thumbnail_url"] is None
    assert (await client.get(broken["url"])).status_code == 200  # the original is served

    healthy = await flows.upload_ok(client, images.noisy_jpeg(300, 200), filename="a.jpg")
    assert (await jobs.run(_uuid(healthy))).outcome is Outcome.READY
    assert (await client.get(f"/api/v1/images/{healthy['id']}/thumbnail")).status_code == 200


async def test_retries_back_off_exponentially(jobs: ThumbnailJobs) -> None:
    jobs.settings = jobs.settings.model_copy(update={"thumbnail_retry_base_seconds": 5})
    assert [jobs.retry_delay(attempt) for attempt in (1, 2, 3, 9)] == [5, 20, 80, 600]


async def test_uploads_succeed_while_redis_is_unreachable_and_the_sweeper_catches_up(
    tmp_path: Path, postgres_url: str, redis_url: str, queue_name: str
) -> None:
    settings = Settings(
        _env_file=None,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path,
        database_url=postgres_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        queue_name=queue_name,
        redis_prefix=queue_name,
    )
    async with app_client(settings) as client:
        body = await flows.upload_ok(client, images.noisy_jpeg(300, 200), filename="a.jpg")
        assert body["thumbnail_status"] == "pending"  # the sweeper will queue it later
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["components"]["queue"]["status"] == "down"
        assert (await client.get("/metrics")).status_code == 200

        # Redis is back (here: the real one); a worker's sweeper finds the lost job.
        reachable = settings.model_copy(
            update={"redis_url": redis_url, "thumbnail_stale_seconds": 0}
        )
        database = Database(reachable.resolved_database_url)
        storage = await build_storage(reachable)
        cpu = CpuPool(1)
        await cpu.start()
        worker = build_worker(
            reachable,
            ThumbnailJobs(reachable, database, storage, cpu),
            _redis(reachable),
            burst=True,
        )
        try:
            await worker.async_run()
        finally:
            await worker.close()
            cpu.close()
            await storage.close()
            await database.dispose()
        meta = (await client.get(f"/api/v1/images/{body['id']}")).json()
        assert meta["thumbnail_status"] == "ready"


def _redis(settings: Settings) -> redis.asyncio.Redis:
    """A worker's Redis client (the worker's `close` disconnects it)."""
    client = wiring.redis_client(settings, wiring.WORKER_REDIS_TIMEOUT)
    assert client is not None
    return client


def _uuid(body: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(body["id"])
