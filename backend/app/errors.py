"""Typed application errors: each carries its HTTP status and contract code."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """An expected failure, rendered as the contract's error envelope."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    message: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail_message = message or self.message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.detail_message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (the CPU pool); subclasses' __init__ signatures
        # differ, so rebuild from the fields instead of from args.
        return _rebuild, (type(self), self.detail_message, self.details, self.headers)


def _rebuild(
    cls: type[AppError], message: str, details: dict[str, Any], headers: dict[str, str]
) -> AppError:
    error = cls.__new__(cls)
    AppError.__init__(error, message, details=details, headers=headers)
    return error


class ValidationFailed(AppError):
    status_code = 422
    code = "VALIDATION_ERROR"
    message = "The request is not valid"


class InvalidRequest(AppError):
    status_code = 400
    code = "INVALID_REQUEST"
    message = "The request is not valid"


class Forbidden(AppError):
    status_code = 403
    code = "FORBIDDEN"
    message = "You are not allowed to do this"


class NotFound(AppError):
    status_code = 404
    code = "NOT_FOUND"
    message = "Not found"


class MethodNotAllowed(AppError):
    status_code = 405
    code = "METHOD_NOT_ALLOWED"
    message = "Method not allowed"


class BodyTooLarge(AppError):
    """A JSON or form body over its cap (uploads have their own, MAX_UPLOAD_BYTES)."""

    status_code = 413
    code = "FILE_TOO_LARGE"
    message = "The request body is too large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(details={"max_bytes": max_bytes}, headers={"Connection": "close"})


class RequestTimeout(AppError):
    """A request body that arrived too slowly; the connection is closed, not drained."""

    status_code = 408
    code = "REQUEST_TIMEOUT"
    message = "The request body arrived too slowly"

    def __init__(
        self, message: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details, headers={"Connection": "close"})


class RangeNotSatisfiable(AppError):
    status_code = 416
    code = "RANGE_NOT_SATISFIABLE"
    message = "The requested range is outside the file"

    def __init__(self, size: int) -> None:
        super().__init__(headers={"Content-Range": f"bytes */{size}"})


class RateLimited(AppError):
    status_code = 429
    code = "RATE_LIMITED"
    message = "Too many requests; retry after the time in Retry-After"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    message = "A required service is unavailable; try again shortly"

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class InternalError(AppError):
    pass
