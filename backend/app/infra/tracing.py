"""OpenTelemetry traces: off by default, on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

One tracer provider per process (`install`), set by the process's entry point (`chitram
serve` through `create_app_from_env`, `chitram worker`) or by a test. Spans: every
request (FastAPI instrumentation, named by route template), every SQL statement (a small
SQLAlchemy listener, statement text only, never parameters), every Redis command (the
redis-py instrumentation), every storage call (`app.storage.instrumented`) and every
thumbnail job, which carries a link to the request that queued it. With tracing off
none of this is installed and our own spans are skipped entirely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from sqlalchemy import Engine, event

from app import __version__
from app.config import Settings

Carrier = dict[str, str]
tracer = trace.get_tracer("chitram", __version__)
_enabled = False
MAX_STATEMENT = 2000  # characters of SQL kept on a span


def enabled() -> bool:
    return _enabled


def setup(settings: Settings, service: str) -> bool:
    """Install an OTLP/HTTP exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    if not settings.otel_exporter_otlp_endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    install(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), service)
    return True


def install(processor: SpanProcessor, service: str = "chitram-api") -> TracerProvider:
    """Make this process trace through `processor`; once per process (later calls only
    add the processor)."""
    global _enabled
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        current.add_span_processor(processor)
        return current
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": __version__})
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument(tracer_provider=provider)
    _enabled = True
    return provider


def instrument_app(app: FastAPI) -> None:
    if _enabled:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="metrics,static/")


def instrument_engine(engine: Engine, system: str) -> None:
    """A client span per SQL statement run on `engine`."""
    if not _enabled:
        return

    @event.listens_for(engine, "before_cursor_execute")
    def _start(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        span = tracer.start_span(
            statement.split(None, 1)[0].upper() if statement else "SQL",
            kind=SpanKind.CLIENT,
            attributes={"db.system": system, "db.statement": statement[:MAX_STATEMENT]},
        )
        context._chitram_span = span

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        span: Span | None = getattr(context, "_chitram_span", None)
        if span is not None:
            span.end()

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        span: Span | None = getattr(context.execution_context, "_chitram_span", None)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
            span.end()


def annotate_request(request_id: str) -> None:
    """Put the request id on the request's server span, to find a trace from a log line."""
    trace.get_current_span().set_attribute("chitram.request_id", request_id)


def current_carrier() -> Carrier | None:
    """The current span's context, to hand to work done elsewhere (a queued job)."""
    if not _enabled:
        return None
    carrier: Carrier = {}
    propagate.inject(carrier)
    return carrier or None


@asynccontextmanager
async def job_span(
    name: str, link: Mapping[str, str] | None, **attributes: Any
) -> AsyncIterator[None]:
    """A root span for a background job, linked to the request that queued it."""
    if not _enabled:
        yield
        return
    links = []
    if link:
        context = trace.get_current_span(propagate.extract(dict(link))).get_span_context()
        if context.is_valid:
            links.append(Link(context))
    with tracer.start_as_current_span(
        name, context=None, kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ):
        yield


@asynccontextmanager
async def span(name: str, **attributes: Any) -> AsyncIterator[None]:
    """A child span of whatever is current; nothing at all when tracing is off."""
    if not _enabled:
        yield
        return
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        yield
