"""Tag jobs in the scaled-out shape: `chitram serve` queues, a `chitram worker` process
makes the thumbnails and then the tags, over PostgreSQL, Redis and arq."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import flows
from tests.support.metrics import sample
from tests.support.server import live_server, live_worker
from tests.tagging import pictures
from tests.tagging.support import wait_for_tags

pytestmark = pytest.mark.anyio


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
        "THUMBNAIL_RETRY_BASE_SECONDS": "0.01",
    }


async def test_a_worker_tags_what_it_thumbnailed(
    tmp_path: Path, scaled_env: dict[str, str]
) -> None:
    with live_server(scaled_env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            shot = await flows.upload_ok(client, pictures.screenshot(), filename="shot.png")
            gif = await flows.upload_ok(client, pictures.animated_gif(), filename="a.gif")
            with live_worker(scaled_env, tmp_path) as worker:
                tagged = [await wait_for_tags(client, body["id"]) for body in (shot, gif)]
                metrics = (await client.get(worker.metrics_url)).text
    assert [body["tags_status"] for body in tagged] == ["ready", "ready"]
    assert tagged[0]["tags_auto"] == ["landscape", "screenshot", "white"]
    assert "animated" in tagged[1]["tags_auto"]
    assert all(body["placeholder"] for body in tagged)
    assert sample(metrics, 'chitram_tagger_jobs_total{result="ready"}') == 2
    assert "tags ready" in worker.log()
    assert "tags ready" not in server.log()
