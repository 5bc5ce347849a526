"""Redis stops mid-traffic and comes back: the API keeps serving and recovers by itself."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest

from app.config import Settings
from tests.support import images
from tests.support.app import app_client
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


async def _traffic(client: httpx.AsyncClient, image: dict[str, str]) -> list[httpx.Response]:
    """A little of everything a user does; the responses, for their statuses."""
    responses = [
        await client.get(f"/api/v1/images/{image['id']}"),
        await client.get(image["url"]),
        await client.post("/api/v1/images/upload", files={"file": ("b.png", images.png())}),
    ]
    created = responses[-1]
    if created.status_code == 201:
        responses.append(await client.delete(created.json()["delete_url"]))
    return responses


async def test_redis_stops_and_returns_without_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as server:
        configured = settings.model_copy(
            update={"redis_url": server.url, "rate_limit_upload": "1000/minute"}
        )
        async with app_client(configured, base_url="http://t") as client:
            image = (
                await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
            ).json()
            await client.get(f"/api/v1/images/{image['id']}")
            hit = await client.get(f"/api/v1/images/{image['id']}")
            assert hit.headers["x-cache"] == "HIT"
            assert (await client.get("/health")).json()["status"] == "ok"

            server.stop()
            during = []
            for _ in range(5):
                during += await _traffic(client, image)
            assert all(r.status_code < 500 for r in during), [r.status_code for r in during]
            assert {r.status_code for r in during} <= {200, 201, 204}
            metadata = await client.get(f"/api/v1/images/{image['id']}")
            assert metadata.headers["x-cache"] == "BYPASS"
            health = await client.get("/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["components"]["cache"]["status"] == "down"
            limited = during[2]
            assert limited.headers["ratelimit-limit"] == "1000"  # limits still counted

            server.start()  # the same port: as when Redis restarts
            deadline = time.monotonic() + 15
            while True:
                metadata = await client.get(f"/api/v1/images/{image['id']}")
                health = await client.get("/health")
                if metadata.headers["x-cache"] != "BYPASS" and health.json()["status"] == "ok":
                    break
                assert time.monotonic() < deadline, "never recovered"
                await anyio.sleep(0.25)
            again = await client.get(f"/api/v1/images/{image['id']}")
            assert again.headers["x-cache"] == "HIT"
            assert all(r.status_code < 500 for r in await _traffic(client, image))
