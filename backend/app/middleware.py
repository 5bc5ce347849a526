"""Pure ASGI middleware: request ids and the access log (no BaseHTTPMiddleware overhead)."""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyTooLarge
from app.handlers import render
from app.logging import request_id_var

# Bodies other than uploads are small JSON or forms (accounts, keys): anything larger is
# refused before it is buffered. Uploads stream under MAX_UPLOAD_BYTES instead.
MAX_BODY_BYTES = 64 * 1024
STREAMED_PATHS = frozenset({"/api/v1/images/upload", "/api/v1/images/batch", "/upload"})

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
access_log = logging.getLogger("chitram.access")


class RequestIdMiddleware:
    """Echo a well-formed `X-Request-ID` or generate one; log one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
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
            route = scope.get("route")
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": getattr(route, "path", None) or "<unmatched>",
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)


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
