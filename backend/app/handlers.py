"""Render every error in the contract's envelope (or an HTML page for browsers)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from app.errors import (
    AppError,
    BodyTooLarge,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
)
from app.web.templates import PAGE_HEADERS, templates

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
        return _html_page(request, status, message, request_id, headers)
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


TITLES = {
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    429: "Slow down",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


def _html_page(
    request: Request,
    status: int,
    message: str,
    request_id: str | None,
    headers: dict[str, str] | None,
) -> Response:
    """The error as a page of the site (a friendly 404, 500...), for browsers."""
    context = {
        "title": TITLES.get(status, "Something is wrong with this request"),
        "message": message,
        "request_id": request_id,
        "user": None,
        "csrf_token": "",
        "notice": None,
    }
    response = templates.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers.update({**PAGE_HEADERS, **(headers or {})})
    return response
