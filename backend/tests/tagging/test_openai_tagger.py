"""`TAGGER=openai` over HTTP against a fake OpenAI-compatible server on loopback: what is
sent (a small JPEG, never the original), what is kept (the model's valid tags, capped),
and what a failing model server does (the tags fail; the image never does)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support import flows
from tests.support.metrics import sample
from tests.tagging import pictures
from tests.tagging.fake_openai import FakeOpenAI, fake_openai
from tests.tagging.support import wait_for_tags

pytestmark = pytest.mark.anyio
API_KEY = "sk-test-0123456789"
MODEL = "llava:7b"
MAX_ATTEMPTS = 3
BREAKER = 'chitram_breaker_state{dependency="tagger"}'


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


@pytest.fixture
def settings_overrides(fake: FakeOpenAI) -> dict[str, object]:
    return {
        "tagger": "openai",
        "tagger_url": fake.url,
        "tagger_model": MODEL,
        "tagger_api_key": API_KEY,
        "tagger_max_tags": 3,
        "tagger_timeout_seconds": 0.5,
        "thumbnail_max_attempts": MAX_ATTEMPTS,
        "thumbnail_retry_base_seconds": 0.01,
    }


def _image_of(request: dict[str, Any]) -> bytes:
    (message,) = request["messages"]
    assert message["role"] == "user"
    text, image = message["content"]
    assert text["type"] == "text"
    assert "JSON array" in text["text"]
    assert image["type"] == "image_url"
    url = image["image_url"]["url"]
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    return base64.b64decode(url.removeprefix(prefix), validate=True)


async def test_the_model_gets_a_small_jpeg_and_its_valid_tags_are_kept(
    client: httpx.AsyncClient, fake: FakeOpenAI
) -> None:
    fake.reply = (
        '```json\n["Beach", "sun/set", "Palm Tree", "x' + "y" * 60 + '", "dog", "cat"]\n```'
    )
    original = pictures.photo((2000, 1000))
    uploaded = await flows.upload_ok(client, original, filename="beach.jpg")
    body = await wait_for_tags(client, uploaded["id"])

    assert body["tags_status"] == "ready"
    assert body["tags_auto"] == ["beach", "dog", "palm tree"]  # invalid dropped, 3 kept
    assert body["tags"] == body["tags_auto"]  # only the model's: no basic tags mixed in
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == MODEL
    assert request.body["temperature"] == 0
    assert request.body["max_tokens"] > 0
    jpeg = _image_of(request.body)
    assert jpeg != original
    assert len(jpeg) < len(original) / 4
    with Image.open(BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        assert image.size == (512, 256)
        assert not image.getexif()  # nothing of the original's metadata


@pytest.mark.parametrize("mode", ["error", "garbage", "hang"])
async def test_a_failing_model_fails_the_tags_after_the_retries_and_nothing_else(
    client: httpx.AsyncClient, fake: FakeOpenAI, mode: str
) -> None:
    fake.mode = mode
    uploaded = await flows.upload_ok(client, pictures.screenshot(), filename="shot.png")
    assert uploaded["tags_status"] == "pending"
    body = await wait_for_tags(client, uploaded["id"])

    assert body["tags_status"] == "failed"
    assert body["tags"] == body["tags_auto"] == []
    assert len(fake.requests) == MAX_ATTEMPTS
    assert body["thumbnail_status"] == "ready"
    assert body["placeholder"] is not None
    assert (await client.get(uploaded["url"])).status_code == 200
    assert (await client.get(body["thumbnails"]["small"])).status_code == 200


async def test_a_dead_model_server_opens_the_breaker(
    client: httpx.AsyncClient, fake: FakeOpenAI
) -> None:
    fake.mode = "error"
    assert sample((await client.get("/metrics")).text, BREAKER) == 0  # closed
    first = await flows.upload_ok(client, pictures.screenshot())
    assert (await wait_for_tags(client, first["id"]))["tags_status"] == "failed"
    second = await flows.upload_ok(client, pictures.cutout())
    assert (await wait_for_tags(client, second["id"]))["tags_status"] == "failed"

    # Five failures in a row open it: the sixth attempt fails at once, without a call.
    assert len(fake.requests) == 5
    assert sample((await client.get("/metrics")).text, BREAKER) == 2  # open
