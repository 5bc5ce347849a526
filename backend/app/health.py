"""GET /health: the database and storage are critical, the rest is reported."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app import __version__
from app.deps import ResourcesDep

router = APIRouter(tags=["operations"])


class Component(BaseModel):
    status: Literal["up", "down", "disabled"]
    latency_ms: float | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    version: str
    components: dict[str, Component]


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database or storage is down"}},
)
async def health(resources: ResourcesDep) -> JSONResponse:
    """Liveness and readiness: 200 while the database and storage answer, else 503."""
    components = {
        "database": await _probe(resources.database.ping),
        "storage": await _probe(resources.storage.ping),
        "cache": Component(status="disabled"),
        "queue": Component(status="disabled"),
    }
    critical_down = any(components[name].status == "down" for name in ("database", "storage"))
    degraded = any(c.status == "down" for c in components.values())
    overall = "unavailable" if critical_down else "degraded" if degraded else "ok"
    body = Health(status=overall, version=__version__, components=components)
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if critical_down else 200)


async def _probe(check: Callable[[], Awaitable[object]]) -> Component:
    started = time.perf_counter()
    try:
        await check()
    except Exception:
        return Component(status="down")
    return Component(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 2))
