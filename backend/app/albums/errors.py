"""Errors of the albums domain, each with its contract status and code."""

from __future__ import annotations

from app.errors import AppError


class AlbumNotFound(AppError):
    """No such album, or one the caller may not see (its existence is not revealed)."""

    status_code = 404
    code = "ALBUM_NOT_FOUND"
    message = "No such album"
