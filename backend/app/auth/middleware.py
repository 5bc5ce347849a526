"""Resolve the caller once per request, before rate limits and routing.

Every route sees the same answer: credentials that are present but bad get 401 wherever
they are sent (contract section 1), and rate limits count the verified caller. A failed
credential also counts against the address's authentication limit, so guessing tokens
or API keys is as slow as guessing passwords.

The request's credentials are read here, once, into a typed `Credentials`: the accounts
service resolves them without ever seeing the request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.credentials import (
    SESSION_COOKIE,
    ApiKeySecret,
    BearerToken,
    Credentials,
    SessionSecret,
)
from app.auth.errors import TokenExpired, Unauthorized
from app.config import Settings
from app.errors import AppError, RateLimited
from app.http import routes
from app.http.handlers import render
from app.http.net import client_address

if TYPE_CHECKING:
    from app.wiring import Resources


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
            credentials = read_credentials(scope, self.settings)
            state["principal"] = await resources.auth.authenticate(credentials)
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


def read_credentials(scope: Scope, settings: Settings) -> Credentials:
    """The request's one credential (or none) and its client address. Two credentials, or
    an Authorization that is not a bearer token, raise 401: credentials that are present
    but bad never downgrade a caller to anonymous."""
    authorization = api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    path = scope["path"]
    if authorization is not None and _client_authentication(path, authorization):
        authorization = None
    address = client_address(scope, settings)
    if authorization is not None and api_key is not None:
        raise Unauthorized("Send one credential, a bearer token or an X-API-Key, not both")
    if authorization is not None:
        return Credentials(address, _bearer(authorization))
    if api_key is not None:
        return Credentials(address, ApiKeySecret(api_key.strip()))
    session = _cookie(scope, SESSION_COOKIE) if _is_page(path) else None
    return Credentials(address, SessionSecret(session) if session else None)


def _bearer(authorization: str) -> BearerToken:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Only bearer tokens are accepted in Authorization")
    return BearerToken(token.strip())


def _is_page(path: str) -> bool:
    """Web pages take the session cookie; the API never does (so it needs no CSRF guard),
    and static files need no session (a page's every asset would cost a lookup)."""
    return not path.startswith((routes.API_ROOT, routes.STATIC))


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope["headers"]:
        if header == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found:
                return found
    return None


def _client_authentication(path: str, authorization: str) -> bool:
    """Whether this is an OAuth2 client authenticating to the token endpoint (RFC 6749
    section 2.3.1), not a user: Swagger UI's Authorize button sends `Basic Og==` (an
    empty client id) with the password form. We register no clients, so it means nothing."""
    return path == routes.AUTH_TOKEN and authorization[:6].lower() == "basic "
