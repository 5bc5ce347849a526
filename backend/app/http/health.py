"""GET /health (the database and storage are critical, the rest is reported), /metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app import __version__
from app.http.deps import ResourcesDep
from app.http.openapi import errors
from app.infra.metrics import CONTENT_TYPE_LATEST, THUMBNAIL_QUEUE_DEPTH, generate_latest
from app.infra.probe import Probe, Status, probe

router = APIRouter(tags=["operations"])


class Component(BaseModel):
    status: Status
    latency_ms: float | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    version: str
    components: dict[str, Component]


@router.head(
    "/health",
    operation_id="head_health",
    response_class=Response,
    responses={
        200: {"description": "The database and storage answer"},
        **errors(),
        503: {"description": "The database or storage is down"},
    },
)
@router.get(
    "/health",
    operation_id="get_health",
    response_model=Health,
    responses={
        **errors(),
        503: {"model": Health, "description": "The database or storage is down"},
    },
)
async def health(resources: ResourcesDep) -> JSONResponse:
    """Liveness and readiness: 200 while the database and storage answer, else 503."""
    components = {
        "database": _component(await probe(resources.database.ping)),
        "storage": _component(await probe(resources.storage.ping)),
        "cache": _component(await resources.cache.status()),
        "queue": _component(await resources.queue.status()),
    }
    critical_down = any(components[name].status == "down" for name in ("database", "storage"))
    degraded = any(c.status == "down" for c in components.values())
    overall = "unavailable" if critical_down else "degraded" if degraded else "ok"
    body = Health(status=overall, version=__version__, components=components)
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if critical_down else 200)


def _component(status: Probe) -> Component:
    return Component(status=status[0], latency_ms=status[1])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        **errors(),
    },
)
async def metrics(resources: ResourcesDep) -> Response:
    """Prometheus metrics of this process, and the thumbnail queue's depth."""
    depth = await resources.queue.depth()
    if depth is not None:
        THUMBNAIL_QUEUE_DEPTH.set(depth)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
