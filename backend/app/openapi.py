"""OpenAPI helpers: every error response documented with the one envelope."""

from __future__ import annotations

from typing import Any

from app.schemas import ErrorEnvelope

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
