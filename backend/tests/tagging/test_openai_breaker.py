"""The `openai` tagger's calls at the process boundary (httpx's mock transport): headers,
HTTP failures, and its circuit breaker through closed, open, half-open and closed again."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY

from app.config import Settings
from app.infra.circuits import Circuit
from app.tagging.base import TaggerError, TagInput
from app.tagging.features import ImageFeatures
from app.tagging.openai import OpenAITagger

pytestmark = pytest.mark.anyio
DEPENDENCY = "tagger-under-test"


class Pixels:
    async def features(self) -> ImageFeatures:
        raise AssertionError("the openai tagger reads no features")

    async def jpeg(self, max_side: int) -> bytes:
        return b"\xff\xd8 a small jpeg \xff\xd9"


IMAGE = TagInput(width=800, height=600, frames=1, camera=False, pixels=Pixels())


def _settings() -> Settings:
    return Settings(
        _env_file=None,
        data_dir=Path("/nonexistent-not-used"),
        tagger="openai",
        tagger_url="http://model.test/v1/",
        tagger_model="vision",
    )


def _reply(*tags: str) -> httpx.Response:
    content = json.dumps(list(tags))
    return httpx.Response(200, json={"choices": [{"message": {"content": content}}]})


def _state() -> float | None:
    return REGISTRY.get_sample_value("chitram_breaker_state", {"dependency": DEPENDENCY})


def _tagger(handler: httpx.MockTransport, circuit: Circuit) -> OpenAITagger:
    tagger = OpenAITagger(_settings(), circuit=circuit)
    tagger.client = httpx.AsyncClient(transport=handler, headers=tagger.client.headers)
    return tagger


async def test_no_api_key_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _reply("cat")

    tagger = _tagger(httpx.MockTransport(handle), Circuit(DEPENDENCY))
    assert await tagger.tag(IMAGE) == ["cat"]
    assert str(seen[0].url) == "http://model.test/v1/chat/completions"
    assert "authorization" not in seen[0].headers
    await tagger.close()


@pytest.mark.parametrize("status", [400, 401, 404, 429, 503])
async def test_an_error_status_is_a_tagger_error(status: int) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="no"))
    tagger = _tagger(transport, Circuit(DEPENDENCY))
    with pytest.raises(TaggerError, match=str(status)):
        await tagger.tag(IMAGE)
    await tagger.close()


async def test_an_oversized_reply_is_refused() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"[" * 300_000))
    tagger = _tagger(transport, Circuit(DEPENDENCY))
    with pytest.raises(TaggerError, match="over"):
        await tagger.tag(IMAGE)
    await tagger.close()


async def test_the_breaker_opens_then_lets_one_call_through_and_closes() -> None:
    calls: list[float | None] = []  # the breaker's state as each call reached the server
    healthy = False

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(_state())
        return _reply("cat") if healthy else httpx.Response(502)

    circuit = Circuit(DEPENDENCY, threshold=3, ttl=0.2)
    tagger = _tagger(httpx.MockTransport(handle), circuit)
    assert _state() == 0
    for _ in range(3):
        with pytest.raises(TaggerError, match="502"):
            await tagger.tag(IMAGE)
    assert _state() == 2
    with pytest.raises(TaggerError, match="not called"):
        await tagger.tag(IMAGE)
    assert len(calls) == 3  # refused at once, the server never asked

    healthy = True
    await anyio.sleep(0.3)  # the breaker's open period ends
    assert await tagger.tag(IMAGE) == ["cat"]
    assert calls[-1] == 1  # the trial call went out half-open
    assert _state() == 0
    await tagger.close()
