"""Render every error in the contract's envelope (or, for browsers, the HTML page of the
`ErrorPage` the web UI registers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from app.errors import (
    AppError,
    BodyTooLarge,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
)

log = logging.getLogger(__name__)

# (request, status, message, request id, headers) -> an HTML page of the error.
ErrorPage = Callable[[Request, int, str, str | None, dict[str, str] | None], Response]


def install_error_handlers(app: FastAPI, *, error_page: ErrorPage | None = None) -> None:
    """Render errors as the contract says; as `error_page` for browsers, when given."""
    app.state.error_page = error_page
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, _client_gone)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def render(request: Request, error: AppError) -> Response:
    return _envelope(
        request, error.status_code, error.code, error.detail_message, error.details, error.headers
    )


def _envelope(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request_id = getattr(request.state, "request_id", None)
    error_page = _error_page(request)
    if error_page is not None and _wants_html(request):
        return error_page(request, status, message, request_id, headers)
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": request_id,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


async def _app_error(request: Request, exc: AppError) -> Response:
    return render(request, exc)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return render(request, NotFound(headers=headers))
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = allowed
        return render(request, MethodNotAllowed(headers=headers))
    if exc.status_code == 413:  # raised while reading a capped body (app.http.middleware)
        return render(request, BodyTooLarge(int(exc.detail)))
    # Any other status Starlette or FastAPI raise themselves (a body they cannot parse...).
    code = "INTERNAL_ERROR" if exc.status_code >= 500 else "INVALID_REQUEST"
    return _envelope(request, exc.status_code, code, str(exc.detail), headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route of this path answers: Starlette's 405 names only the
    methods of the first route whose path matched."""
    scope = request.scope
    routes = request.app.router.routes
    allowed: set[str] = set()
    for route in routes:
        if isinstance(route, Mount):  # a mount matches whatever the method
            if isinstance(route.app, StaticFiles) and route.matches(scope)[0] != Match.NONE:
                allowed.update(("GET", "HEAD"))
            continue
        for method in _METHODS:
            if (
                method not in allowed
                and route.matches({**scope, "method": method})[0] == Match.FULL
            ):
                allowed.add(method)
    return ", ".join(method for method in _METHODS if method in allowed)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems: list[dict[str, Any]] = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return render(request, ValidationFailed(details={"errors": problems}))


async def _client_gone(request: Request, _exc: ClientDisconnect) -> Response:
    log.info("client disconnected before the request body was read")
    return render(request, InvalidRequest("The client closed the connection"))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette calls this from its outermost middleware, outside RequestIdMiddleware,
    # so the request id is added here, to the log line and to the response.
    request_id = getattr(request.state, "request_id", None)
    log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    response = render(request, InternalError())
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def _error_page(request: Request) -> ErrorPage | None:
    """The HTML renderer registered on the app (middleware reach it through the scope)."""
    app = request.scope.get("app")
    error_page: ErrorPage | None = getattr(getattr(app, "state", None), "error_page", None)
    return error_page


def _wants_html(request: Request) -> bool:
    """Whether the client prefers HTML to JSON (a browser): by `Accept`'s q-values, ties
    going to the type listed first. Paths under /api always answer JSON."""
    if request.url.path.startswith("/api"):
        return False
    html, json = _preference(request.headers.get("accept", ""))
    return html > json


def _preference(accept: str) -> tuple[tuple[float, int], tuple[float, int]]:
    """(q, -position) of text/html and of JSON (`application/json`, `+json`) in `accept`;
    (0, 0) for a type it does not list."""
    html = json = (0.0, 0)
    for position, item in enumerate(accept.split(",")[:50]):
        media_type, *params = item.split(";")
        media_type = media_type.strip().lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        rank = (quality, -position) if quality > 0 else (0.0, 0)
        if media_type == "text/html":
            html = max(html, rank)
        elif media_type == "application/json" or media_type.endswith("+json"):
            json = max(json, rank)
    return html, json
