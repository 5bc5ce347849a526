"""Pure ASGI middleware: request ids, the access log and HTTP metrics, and the body cap
(no BaseHTTPMiddleware overhead)."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import BodyTooLarge
from app.http import routes
from app.http.handlers import render
from app.http.net import client_address
from app.infra import tracing
from app.infra.logging import request_id_var
from app.infra.metrics import HTTP_REQUESTS, HTTP_SECONDS

# Bodies other than uploads are small JSON or forms (accounts, keys): anything larger is
# refused before it is buffered. Uploads stream under MAX_UPLOAD_BYTES instead.
MAX_BODY_BYTES = 64 * 1024
STREAMED_PATHS = frozenset({routes.IMAGES_UPLOAD, routes.IMAGES_BATCH, routes.PAGE_UPLOAD})

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
access_log = logging.getLogger("chitram.access")
# Metric labels come from a fixed set: a client inventing methods must not invent series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"


class RequestIdMiddleware:
    """Echo a well-formed `X-Request-ID` or generate one; count and time every request by
    route template; log one access line per request (with the user when known, and the
    client address only as `LOG_CLIENT_IP` allows)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        if tracing.enabled():
            tracing.annotate_request(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            # The template as documented: `{image_id}`, not `{image_id:image_id}`.
            route = getattr(scope.get("route"), "path_format", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request", extra=self._access(scope, method, route, status, seconds)
                )
            request_id_var.reset(token)

    def _access(
        self, scope: Scope, method: str, route: str, status: int, seconds: float
    ) -> dict[str, Any]:
        principal = scope["state"].get("principal")
        line: dict[str, Any] = {
            "method": method,
            "route": route,  # the template: ids, tokens and query strings stay out of logs
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": scope["state"]["request_id"],
            "user_id": str(principal.user_id) if principal and principal.user_id else None,
        }
        if self.settings.log_client_ip != "none":
            address = client_address(scope, self.settings)
            full = self.settings.log_client_ip == "full"
            line["client"] = address if full else truncated_address(address)
        return line


def truncated_address(address: str) -> str:
    """The client's network, not the client: /24 for IPv4, /48 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_ID.match(candidate) else None
    return None


class BodyLimitMiddleware:
    """Cap every request body except the streamed uploads at `MAX_BODY_BYTES`: a declared
    length over it is refused at once, a chunked body as soon as it passes it."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in STREAMED_PATHS:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await render(Request(scope), BodyTooLarge(self.max_bytes))(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # HTTPException, because FastAPI turns anything else raised while it reads
                # a body into a 400; the handler renders it as BodyTooLarge.
                raise HTTPException(413, str(self.max_bytes))
            return message

        await self.app(scope, capped, send)
