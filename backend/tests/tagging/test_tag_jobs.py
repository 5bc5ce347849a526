"""Automatic tags and placeholders over HTTP, with the default basic tagger, on SQLite and
PostgreSQL: made after the thumbnails, by a durable job that may run twice."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import thash

from app.config import Settings
from app.infra.cpu import CpuPool
from app.infra.db import Database
from app.jobs.outcomes import Outcome
from app.jobs.tagging import TagJobs
from app.storage.factory import build_storage
from app.tagging.factory import build_tagger
from tests.support import flows, images
from tests.support.app import app_client
from tests.support.metrics import sample
from tests.tagging import pictures
from tests.tagging.support import forget_tags, wait_for_tags

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tag_jobs(settings: Settings) -> AsyncIterator[TagJobs]:
    """What another process would run, over the same database and storage as the app."""
    database = Database(settings.resolved_database_url)
    storage = await build_storage(settings)
    cpu = CpuPool(1)
    await cpu.start()
    yield TagJobs(settings, database, storage, cpu, build_tagger(settings))
    cpu.close()
    await storage.close()
    await database.dispose()


READY_JOBS = 'chitram_tagger_jobs_total{result="ready"}'


async def test_an_upload_gets_its_tags_after_its_thumbnails(client: httpx.AsyncClient) -> None:
    ready_before = sample((await client.get("/metrics")).text, READY_JOBS)
    uploaded = await flows.upload_ok(client, pictures.screenshot(), filename="shot.png")
    assert uploaded["tags_status"] == "pending"
    assert uploaded["tags"] == uploaded["tags_auto"] == []
    assert uploaded["placeholder"] is None

    body = await wait_for_tags(client, uploaded["id"])
    assert body["tags_status"] == "ready"
    assert body["thumbnail_status"] == "ready"
    assert body["tags_auto"] == ["landscape", "screenshot", "white"]  # sorted by name
    assert body["tags"] == body["tags_auto"]
    assert (await client.get(uploaded["url"])).status_code == 200
    assert sample((await client.get("/metrics")).text, READY_JOBS) == ready_before + 1


async def test_a_camera_photo_is_tagged_photo(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    uploaded = await flows.upload_ok(
        client, pictures.photo((900, 600)), filename="dsc.jpg", account=account
    )
    body = await wait_for_tags(client, uploaded["id"], headers=account.headers)
    assert body["tags_status"] == "ready"
    assert {"landscape", "photo"} <= set(body["tags_auto"])
    assert "screenshot" not in body["tags_auto"]


async def test_the_placeholder_is_a_thumbhash_of_the_image(client: httpx.AsyncClient) -> None:
    uploaded = await flows.upload_ok(client, images.jpeg(320, 200, color=(200, 30, 30)))
    body = await flows.wait_for_thumbnails(client, uploaded["id"])
    assert body["thumbnail_status"] == "ready"
    digest = list(base64.b64decode(body["placeholder"], validate=True))
    assert 5 <= len(digest) <= 25
    red, green, blue, alpha = thash.thumb_hash_to_average_rgba(digest) or (0, 0, 0, 0)
    assert (round(red * 255), round(green * 255), round(blue * 255)) == pytest.approx(
        (200, 30, 30), abs=12
    )
    assert alpha == 1.0
    assert thash.thumb_hash_to_approximate_aspect_ratio(digest) == pytest.approx(1.6, rel=0.2)


async def test_identical_uploads_each_get_tags(client: httpx.AsyncClient) -> None:
    """The second upload's thumbnails exist already: its tag job reads the original."""
    data = pictures.cutout()
    first = await flows.upload_ok(client, data)
    assert (await wait_for_tags(client, first["id"]))["tags_status"] == "ready"
    second = await flows.upload_ok(client, data)
    body = await wait_for_tags(client, second["id"])
    assert body["tags_auto"] == ["red", "screenshot", "square", "transparent"]


async def test_images_from_before_automatic_tags_are_tagged_by_the_sweeper(
    settings: Settings,
) -> None:
    async with app_client(settings) as client:
        uploaded = await flows.upload_ok(client, pictures.animated_gif(), filename="a.gif")
        tagged = await wait_for_tags(client, uploaded["id"])
    await forget_tags(settings, uploaded["id"])
    async with app_client(settings) as client:
        assert (await client.get(f"/api/v1/images/{uploaded['id']}")).json()["tags_auto"] == []
        body = await wait_for_tags(client, uploaded["id"])
    assert body["tags_status"] == "ready"
    assert body["tags_auto"] == tagged["tags_auto"]
    assert tagged["tags_auto"] == ["animated", "green", "screenshot", "square", "white"]


async def test_a_tag_job_that_runs_again_changes_nothing(
    client: httpx.AsyncClient, settings: Settings, tag_jobs: TagJobs
) -> None:
    account = await flows.register(client)
    uploaded = await flows.upload_ok(client, pictures.cutout(), account=account)
    image_id = uuid.UUID(uploaded["id"])
    tagged = await wait_for_tags(client, uploaded["id"], headers=account.headers)
    assert (await tag_jobs.run(image_id)).outcome is Outcome.SKIPPED

    # Two runs at once, as after a worker's death: one writes, the other finds it done.
    await forget_tags(settings, uploaded["id"])
    results = await asyncio.gather(tag_jobs.run(image_id), tag_jobs.run(image_id))
    assert sorted(result.outcome for result in results) == [Outcome.READY, Outcome.SKIPPED]
    again = await client.get(f"/api/v1/images/{uploaded['id']}", headers=account.headers)
    assert again.json()["tags_auto"] == tagged["tags_auto"]
    counts = (await client.get("/api/v1/tags", headers=account.headers)).json()["items"]
    assert {item["name"]: item["count"] for item in counts} == dict.fromkeys(tagged["tags_auto"], 1)


class TestWithoutATagger:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"tagger": "none"}

    async def test_uploads_say_disabled_and_get_no_tags(self, client: httpx.AsyncClient) -> None:
        ready_before = sample((await client.get("/metrics")).text, READY_JOBS)
        uploaded = await flows.upload_ok(client, pictures.screenshot())
        assert uploaded["tags_status"] == "disabled"
        body = await flows.wait_for_thumbnails(client, uploaded["id"])
        assert body["thumbnail_status"] == "ready"
        assert body["placeholder"] is not None
        assert body["tags_status"] == "disabled"
        assert body["tags_auto"] == []
        assert sample((await client.get("/metrics")).text, READY_JOBS) == ready_before

    async def test_images_waiting_from_before_are_disabled(self, settings: Settings) -> None:
        async with app_client(settings) as client:
            uploaded = await flows.upload_ok(client, pictures.screenshot())
            await flows.wait_for_thumbnails(client, uploaded["id"])
        await forget_tags(settings, uploaded["id"])
        async with app_client(settings) as client:
            body = await wait_for_tags(client, uploaded["id"])
        assert body["tags_status"] == "disabled"
        assert body["tags_auto"] == []
