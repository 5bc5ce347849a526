"""Errors of the accounts domain, each with its contract status and code."""

from __future__ import annotations

from app.errors import AppError

BEARER = {"WWW-Authenticate": "Bearer"}


class Unauthorized(AppError):
    status_code = 401
    code = "UNAUTHORIZED"
    message = "Authentication is required: send a bearer token or an X-API-Key"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers=BEARER)


class TokenExpired(AppError):
    status_code = 401
    code = "TOKEN_EXPIRED"
    message = "The token has expired; log in again"

    def __init__(self) -> None:
        challenge = 'Bearer error="invalid_token", error_description="The token has expired"'
        super().__init__(headers={"WWW-Authenticate": challenge})


class InvalidCredentials(AppError):
    status_code = 401
    code = "INVALID_CREDENTIALS"
    message = "Wrong email or password"

    def __init__(self) -> None:
        super().__init__(headers=BEARER)


class EmailExists(AppError):
    status_code = 409
    code = "EMAIL_EXISTS"
    message = "An account with this email already exists"


class ApiKeyNotFound(AppError):
    status_code = 404
    code = "NOT_FOUND"
    message = "No such API key"


class SessionEnded(Unauthorized):
    message = "You have been signed out (your session ended); log in again"
