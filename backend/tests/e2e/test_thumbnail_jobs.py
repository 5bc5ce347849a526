"""Thumbnail jobs across real processes: crashes of the API and of `chitram worker`."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import images
from tests.support.flows import wait_for_thumbnails
from tests.support.server import live_server, live_worker

pytestmark = pytest.mark.anyio
MB = 1024 * 1024


def _photos(count: int) -> list[bytes]:
    """Noisy ~4 MP JPEGs: each takes a worker tens of milliseconds to thumbnail."""
    return [images.noisy_jpeg(2400, 1800, seed=seed) for seed in range(count)]


async def _batch(client: httpx.AsyncClient, photos: list[bytes]) -> list[dict[str, Any]]:
    files = [("files", (f"p{i}.jpg", photo, "image/jpeg")) for i, photo in enumerate(photos)]
    response = await client.post("/api/v1/images/batch", files=files, timeout=120)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * len(photos)
    return [r["image"] for r in results]


async def _all_ready(
    client: httpx.AsyncClient, uploaded: list[dict[str, Any]], seconds: float
) -> None:
    for body in uploaded:
        ready = await wait_for_thumbnails(client, body["id"], seconds=seconds)
        assert ready["thumbnail_status"] == "ready"
        for url in ready["thumbnails"].values():
            assert (await client.get(url)).status_code == 200


def _sqlite_statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT thumbnail_status FROM images")]


async def test_thumbnails_survive_a_sigkill_of_the_api_that_accepted_them(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "MAX_UPLOAD_BYTES": str(8 * MB)}
    with live_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            uploaded = await _batch(client, _photos(6))
        server.kill()  # at once: the last uploads' jobs have barely started
    statuses = _sqlite_statuses(tmp_path / "data" / "chitram.db")
    assert len(statuses) == 6
    assert "pending" in statuses, "the kill came too late to prove anything"

    with live_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await _all_ready(client, uploaded, seconds=60)


@pytest.fixture
def scaled_env(
    tmp_path: Path, postgres_url: str, redis_url: str, queue_name: str
) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path / "data"),  # local storage shared by the API and the worker
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue_name,
        "REDIS_PREFIX": queue_name,
        "MAX_UPLOAD_BYTES": str(8 * MB),
        "THUMBNAIL_JOB_TIMEOUT_SECONDS": "3",  # a dead worker's jobs return after 13 s
        "THUMBNAIL_SWEEP_INTERVAL_SECONDS": "5",
    }


async def _pending(postgres_url: str, ids: list[str]) -> int:
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM images WHERE thumbnail_status = 'pending' AND id = ANY($1)",
            [uuid.UUID(i) for i in ids],
        )
    finally:
        await connection.close()
    return int(count)


async def test_a_separate_worker_makes_the_thumbnails(
    tmp_path: Path, scaled_env: dict[str, str]
) -> None:
    with live_server(scaled_env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            uploaded = await _batch(client, [images.noisy_jpeg(800, 600, seed=s) for s in range(3)])
            health = (await client.get("/health")).json()
            assert health["components"]["queue"]["status"] == "up"
            # Nobody works on them yet: the API process never runs jobs itself with Redis.
            for body in uploaded:
                response = await client.get(f"/api/v1/images/{body['id']}/thumbnail")
                assert response.json()["error"]["code"] == "THUMBNAIL_NOT_READY"
            with live_worker(scaled_env, tmp_path) as worker:
                await _all_ready(client, uploaded, seconds=60)
                metrics = (await client.get(worker.metrics_url)).text
            assert 'chitram_thumbnail_jobs_total{result="ready"} 3.0' in metrics
    assert "thumbnails ready" in worker.log()
    assert "thumbnails ready" not in server.log()


async def test_a_job_killed_with_its_worker_finishes_after_a_restart(
    tmp_path: Path, scaled_env: dict[str, str], postgres_url: str
) -> None:
    with live_server(scaled_env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            uploaded = await _batch(client, _photos(8))
            ids = [body["id"] for body in uploaded]
            with live_worker(scaled_env, tmp_path) as worker:
                # Kill it once it is busy: jobs have started, and not all have finished.
                await wait_for_thumbnails(client, ids[0], seconds=60)
                worker.kill()
            pending = await _pending(postgres_url, ids)
            assert pending > 0, "the kill came too late to prove anything"
            with live_worker(scaled_env, tmp_path):
                await _all_ready(client, uploaded, seconds=90)
