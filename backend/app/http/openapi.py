"""OpenAPI helpers: every error response documented with the one envelope."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.http.ratelimit import classify
from app.images import formats
from app.schemas import ErrorEnvelope

STATIC_DIR = Path(__file__).parent.parent / "static"
SWAGGER = "/static/vendor/swagger-ui-5.35.0"
REDOC = "/static/vendor/redoc-2.5.4"

_DESCRIPTIONS = {
    400: "INVALID_REQUEST: a body that is not valid UTF-8 or cannot be parsed, an empty file "
    "part, too many files, a bad cursor",
    401: "UNAUTHORIZED, TOKEN_EXPIRED or INVALID_CREDENTIALS: missing credentials where "
    "they are required, or credentials that are present but bad (on any route)",
    403: "FORBIDDEN, DELETE_TOKEN_REQUIRED or INVALID_DELETE_TOKEN",
    404: "NOT_FOUND / IMAGE_NOT_FOUND / ALBUM_NOT_FOUND",
    408: "REQUEST_TIMEOUT: the upload body arrived slower than UPLOAD_MIN_BYTES_PER_SECOND "
    "(after UPLOAD_GRACE_SECONDS); the connection is closed",
    409: "EMAIL_EXISTS",
    413: "FILE_TOO_LARGE, IMAGE_TOO_LARGE or QUOTA_EXCEEDED: uploads over MAX_UPLOAD_BYTES "
    "or the pixel budget; any other body over 64 KiB",
    415: "INVALID_FILE_FORMAT: the bytes are not an image of an allowed format",
    416: "RANGE_NOT_SATISFIABLE (with Content-Range: bytes */size)",
    422: "VALIDATION_ERROR (details.errors lists the problems)",
    429: "RATE_LIMITED: over this route's rate limit, too many failed credentials from "
    "this address, or (uploads) more than MAX_UPLOADS_PER_CLIENT at once from it "
    "(with Retry-After)",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE: the database or storage is down, or the server is saturated "
    "(with Retry-After)",
}
_EXAMPLE_CODES = {
    400: ("INVALID_REQUEST", "There was an error parsing the body"),
    401: ("UNAUTHORIZED", "Authentication is required"),
    403: ("FORBIDDEN", "You are not allowed to do this"),
    404: ("IMAGE_NOT_FOUND", "Image not found"),
    408: ("REQUEST_TIMEOUT", "The request body arrived too slowly"),
    409: ("EMAIL_EXISTS", "An account with this email already exists"),
    413: ("FILE_TOO_LARGE", "The file is larger than the 5242880 byte limit"),
    415: ("INVALID_FILE_FORMAT", "The file is not an image of an allowed format"),
    416: ("RANGE_NOT_SATISFIABLE", "The requested range is outside the file"),
    422: ("VALIDATION_ERROR", "The request is not valid"),
    429: ("RATE_LIMITED", "Too many requests; retry after the time in Retry-After"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    503: ("SERVICE_UNAVAILABLE", "A required service is unavailable; try again shortly"),
}
# Statuses any route can answer: bad credentials are refused everywhere (and counted
# against the address: 429), every body is capped (413), and dependencies can fail.
ALWAYS = (401, 413, 429, 500, 503)
# `openapi_extra` of routes where authentication is optional: an empty requirement
# beside the schemes says "or nothing" (OpenAPI 3.1, section 4.8.10).
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}


def _error_example(status: int) -> dict[str, Any]:
    code, message = _EXAMPLE_CODES[status]
    details: dict[str, Any] = {}
    if status == 422:
        details = {
            "errors": [{"loc": ["body", "email"], "msg": "Field required", "type": "missing"}]
        }
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": "5f0c6e2b9d0a4c4f8f6f3c1d2b7a9e10",
        }
    }


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the listed errors plus the ones any route can give."""
    wanted = sorted({*statuses, *ALWAYS})
    return {
        status: {
            "model": ErrorEnvelope,
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"example": _error_example(status)}},
        }
        for status in wanted
    }


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


REQUEST_ID = _header("The request's id: the client's X-Request-ID when well formed, else new")
RATE_LIMIT = {
    "RateLimit-Limit": _header("Requests allowed in the current window", "integer"),
    "RateLimit-Remaining": _header("Requests left in the current window", "integer"),
    "RateLimit-Reset": _header("Seconds until the window resets", "integer"),
}
RETRY_AFTER = {"Retry-After": _header("Seconds to wait before retrying", "integer")}
SERVED = {
    "ETag": _header("Strong validator derived from the content hash"),
    "Last-Modified": _header("When the image was uploaded (HTTP date)"),
    "Cache-Control": _header("public, max-age=31536000, immutable"),
    "Accept-Ranges": _header("bytes"),
    "Content-Length": _header("Length of the body in bytes", "integer"),
    "Content-Disposition": _header("inline (attachment with download=1) and the file name"),
    "X-Content-Type-Options": _header("nosniff"),
    "Content-Security-Policy": _header("default-src 'none'; sandbox"),
}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve FastAPI's document completed with what the routes cannot say themselves:
    the response headers, and the limits that come from settings (allowed formats, batch
    size, upload size)."""
    generate = app.openapi
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        base = generate()
        if cached.get("base") is not base:
            cached["base"] = base
            cached["document"] = _complete(copy.deepcopy(base), settings)
        document: dict[str, Any] = cached["document"]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            limited = classify(method.upper(), path) is not None
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = REQUEST_ID
                if limited or status == "429":
                    headers.update(RATE_LIMIT)
                if status in ("429", "503"):
                    headers.update(RETRY_AFTER)
                if status == "401":
                    headers["WWW-Authenticate"] = _header("Bearer")
                if path.endswith(("/file", "/thumbnail")):
                    if status in ("200", "206", "304"):
                        headers.update(SERVED)
                    if status == "206":
                        headers["Content-Range"] = _header("bytes first-last/size")
                    if status == "404" and path.endswith("/thumbnail"):
                        headers.update(RETRY_AFTER)  # THUMBNAIL_NOT_READY
                if path.endswith("/images/{image_id}") and method == "get" and status == "200":
                    headers["X-Cache"] = _header("HIT, MISS or BYPASS: whether the cache answered")
            if "requestBody" in operation:  # undecodable bodies, on every route with one
                operation["responses"].setdefault("400", _bad_body())
            _complete_upload(operation, settings)
    return document


def _bad_body() -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[400],
        "headers": {"X-Request-ID": REQUEST_ID},
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorEnvelope"},
                "example": _error_example(400),
            }
        },
    }


def _complete_upload(operation: dict[str, Any], settings: Settings) -> None:
    """The multipart upload bodies: allowed types of each part, batch size, size cap."""
    content = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    if content is None:
        return
    types = ", ".join(formats.named(name).mime_type for name in settings.allowed_formats)
    rules = (
        f"Allowed formats: {types} (detected from the bytes, whatever the part's name or "
        f"declared type); at most {settings.max_upload_bytes} bytes and "
        f"{settings.max_image_pixels} pixels per image."
    )
    for name, schema in content["schema"]["properties"].items():
        content.setdefault("encoding", {})[name] = {"contentType": types}
        schema["description"] = rules
        if schema.get("type") == "array":
            schema["minItems"] = 1
            schema["maxItems"] = settings.max_batch_files
            schema["description"] = f"1 to {settings.max_batch_files} files. {rules}"


def install_docs(app: FastAPI) -> None:
    """`/docs` and `/redoc` from the vendored files under /static: FastAPI's defaults load
    them from a CDN (and Google Fonts), which a self-hosted or offline install cannot
    reach and which would tell a third party who reads our docs."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    title = f"{app.title} API"
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=redirect,
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{REDOC}/redoc.standalone.js",
            redoc_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            with_google_fonts=False,
        )
