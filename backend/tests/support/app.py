"""The app in this process, behind its lifespan, with an HTTP client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from app.storage import Storage


@asynccontextmanager
async def app_client(
    settings: Settings,
    *,
    storage: Storage | None = None,
    peer: str = "127.0.0.1",
    base_url: str = "http://testserver",
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `create_app(settings)`, as seen from `peer`."""
    async with LifespanManager(
        create_app(settings, storage=storage), startup_timeout=30, shutdown_timeout=30
    ) as manager:
        client = client_from(
            manager.app, peer, base_url=base_url, raise_app_exceptions=raise_app_exceptions
        )
        async with client:
            yield client


def client_from(
    app: Any,
    peer: str,
    *,
    base_url: str = "http://testserver",
    raise_app_exceptions: bool = True,
) -> httpx.AsyncClient:
    """A client for an app already running (one app, several client addresses)."""
    transport = httpx.ASGITransport(
        app=app, client=(peer, 40000), raise_app_exceptions=raise_app_exceptions
    )
    return httpx.AsyncClient(transport=transport, base_url=base_url)
