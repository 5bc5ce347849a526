"""OpenAPI helpers: every error response documented with the one envelope."""

from __future__ import annotations

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

from app.schemas import ErrorEnvelope

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER = "/static/vendor/swagger-ui-5.35.0"
REDOC = "/static/vendor/redoc-2.5.4"

_DESCRIPTIONS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED, TOKEN_EXPIRED or INVALID_CREDENTIALS (bad credentials, on any route)",
    403: "FORBIDDEN, DELETE_TOKEN_REQUIRED or INVALID_DELETE_TOKEN",
    404: "NOT_FOUND / IMAGE_NOT_FOUND",
    409: "EMAIL_EXISTS",
    413: "FILE_TOO_LARGE, IMAGE_TOO_LARGE or QUOTA_EXCEEDED",
    415: "INVALID_FILE_FORMAT",
    416: "RANGE_NOT_SATISFIABLE (with Content-Range: bytes */size)",
    422: "VALIDATION_ERROR (details.errors lists the problems)",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE (with Retry-After)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the listed errors plus the ones any route can give
    (401 included: credentials that are present but bad are refused everywhere)."""
    wanted = sorted({*statuses, 401, 500, 503})
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]} for status in wanted
    }


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
