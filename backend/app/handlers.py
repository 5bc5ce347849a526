"""Render every error in the contract's envelope (or an HTML page for browsers)."""

from __future__ import annotations

import html
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, JSONResponse, Response

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


def install_error_handlers(app: FastAPI) -> None:
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
    if _wants_html(request):
        page = _html_page(status, message, request_id)
        return HTMLResponse(page, status_code=status, headers=headers)
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
        return render(request, MethodNotAllowed(headers=headers))
    if exc.status_code == 413:  # raised while reading a capped body (app.middleware)
        return render(request, BodyTooLarge(int(exc.detail)))
    # Any other status Starlette or FastAPI raise themselves (a body they cannot parse...).
    code = "INTERNAL_ERROR" if exc.status_code >= 500 else "INVALID_REQUEST"
    return _envelope(request, exc.status_code, code, str(exc.detail), headers=headers)


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


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api"):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept and accept.find("text/html") < max(accept.find("json"), 10**6)


def _html_page(status: int, message: str, request_id: str | None) -> str:
    title = {404: "Not found", 405: "Not allowed", 500: "Something went wrong"}.get(status, "Error")
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{status} {html.escape(title)} · Chitram</title>"
        "<body style='font-family:system-ui;max-width:40rem;margin:4rem auto;padding:0 1rem'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f"<p><a href='/'>Chitram home</a></p><p><small>Request id: {html.escape(request_id or '-')}"
        "</small></p></body></html>"
    )
