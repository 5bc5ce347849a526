"""Traces through an in-memory exporter: the request span carries the request id, SQL and
storage spans are its descendants, and the thumbnail job's span links to the upload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config import Settings
from app.infra import tracing
from tests.support import images
from tests.support.app import app_client
from tests.support.flows import wait_for_thumbnails

pytestmark = pytest.mark.anyio


class Switchable(SpanProcessor):
    """Forwards finished spans only while a test of this module listens: the provider
    lives as long as the process, the exporter must not fill up with later tests' spans."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)


EXPORTER = InMemorySpanExporter()
SWITCH = Switchable(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    tracing.install(SWITCH)
    EXPORTER.clear()
    SWITCH.on = True
    yield EXPORTER
    SWITCH.on = False
    EXPORTER.clear()


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def test_an_upload_is_one_trace_and_its_job_links_back(
    spans: InMemorySpanExporter, settings: Settings
) -> None:
    async with app_client(settings) as client:
        response = await client.post(
            "/api/v1/images/upload",
            files={"file": ("t.png", images.png(40, 40))},
            headers={"X-Request-ID": "trace-me-1"},
        )
        assert response.status_code == 201
        await wait_for_thumbnails(client, response.json()["id"])
    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    [server] = [s for s in finished if s.name == "POST /api/v1/images/upload"]
    assert server.attributes is not None
    assert server.attributes["chitram.request_id"] == "trace-me-1"
    assert server.attributes["http.route"] == "/api/v1/images/upload"

    def under_upload(span: ReadableSpan) -> bool:
        return server in _ancestors(span, by_id)

    sql = [s for s in finished if s.attributes and s.attributes.get("db.system") == "sqlite"]
    assert any(s.name == "INSERT" and under_upload(s) for s in sql)
    assert all("t.png" not in str(s.attributes) for s in sql)  # statements, never values
    puts = [s for s in finished if s.name == "storage.put"]
    assert any(under_upload(s) for s in puts)

    [job] = [s for s in finished if s.name == "thumbnail job"]
    assert job.parent is None  # a trace of its own ...
    assert [link.context.span_id for link in job.links] == [server.context.span_id]  # ... linked
    assert job.attributes is not None
    assert job.attributes["chitram.image_id"] == response.json()["id"]
    assert any(s.name == "storage.put" and job in _ancestors(s, by_id) for s in puts)


async def test_redis_commands_are_spans_too(
    spans: InMemorySpanExporter, settings: Settings, redis_url: str, queue_name: str
) -> None:
    shared = settings.model_copy(
        update={"redis_url": redis_url, "redis_prefix": queue_name, "queue_name": queue_name}
    )
    async with app_client(shared) as client:
        image = (
            await client.post("/api/v1/images/upload", files={"file": ("r.png", images.png())})
        ).json()
        await client.get(f"/api/v1/images/{image['id']}")
    redis_spans = [
        s
        for s in spans.get_finished_spans()
        if s.attributes and s.attributes.get("db.system") == "redis"
    ]
    assert redis_spans
    names = {s.name for s in redis_spans}
    assert names & {"MGET", "EVALSHA", "EVAL", "ZADD", "SET"}


def test_tracing_is_off_without_an_endpoint() -> None:
    assert tracing.setup(Settings(_env_file=None), "chitram-api") is False
