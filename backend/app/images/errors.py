"""Errors of the images domain, each with its contract status and code."""

from __future__ import annotations

from app.errors import AppError


class InvalidFileFormat(AppError):
    status_code = 415
    code = "INVALID_FILE_FORMAT"
    message = "The file is not a decodable image of an allowed format"


class FileTooLarge(AppError):
    status_code = 413
    code = "FILE_TOO_LARGE"
    message = "The file is larger than the upload limit"

    def __init__(self, max_bytes: int) -> None:
        # Closing the connection is what stops the server from reading the rest of the body.
        super().__init__(details={"max_bytes": max_bytes}, headers={"Connection": "close"})


class ImageTooLarge(AppError):
    status_code = 413
    code = "IMAGE_TOO_LARGE"
    message = "The image's dimensions or frame count exceed the limits"


class QuotaExceeded(AppError):
    status_code = 413
    code = "QUOTA_EXCEEDED"
    message = "This upload would exceed your storage quota"

    def __init__(self, used: int, quota: int) -> None:
        super().__init__(details={"storage_used": used, "storage_quota": quota})


class ImageNotFound(AppError):
    status_code = 404
    code = "IMAGE_NOT_FOUND"
    message = "No such image"


class DeleteTokenRequired(AppError):
    status_code = 403
    code = "DELETE_TOKEN_REQUIRED"
    message = "Deleting this image needs its delete token"


class InvalidDeleteToken(AppError):
    status_code = 403
    code = "INVALID_DELETE_TOKEN"
    message = "The delete token is not valid for this image"


class ThumbnailNotReady(AppError):
    status_code = 404
    code = "THUMBNAIL_NOT_READY"
    message = "The thumbnail is still being made"

    def __init__(self, retry_after: int = 2) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class ThumbnailFailed(AppError):
    status_code = 404
    code = "THUMBNAIL_FAILED"
    message = "The thumbnail could not be made; the original is still served"


class IdempotencyKeyReused(AppError):
    status_code = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "This Idempotency-Key was already used for a different request"


class AlbumNotFound(AppError):
    """An album filter naming no album of the caller's (its existence is not revealed).
    Defined here, below the albums domain, so that image listings can raise it."""

    status_code = 404
    code = "ALBUM_NOT_FOUND"
    message = "No such album"
