"""Resolve the caller once per request, before rate limits and routing.

Every route sees the same answer: credentials that are present but bad get 401 wherever
they are sent (contract section 1), and rate limits count the verified caller. A failed
credential also counts against the address's authentication limit, so guessing tokens
or API keys is as slow as guessing passwords."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.errors import TokenExpired, Unauthorized
from app.config import Settings
from app.errors import AppError, RateLimited
from app.http.handlers import render
from app.http.net import client_address

if TYPE_CHECKING:
    from app.http.lifespan import Resources


class AuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        resources: Resources | None = state.get("resources")
        if scope["type"] != "http" or resources is None:
            await self.app(scope, receive, send)
            return
        try:
            state["principal"] = await resources.auth.authenticate(scope)
        except AppError as exc:
            error = exc
            if isinstance(exc, Unauthorized | TokenExpired):
                error = await self._counted(resources, scope, exc)
            await render(Request(scope), error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _counted(self, resources: Resources, scope: Scope, refused: AppError) -> AppError:
        """The 401, or a 429 once this address has failed too often."""
        try:
            await resources.limiter.require("auth", "ip:" + client_address(scope, self.settings))
        except RateLimited as exc:
            return exc
        return refused
