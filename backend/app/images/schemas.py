"""Request and response bodies of the images API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas import ErrorBody

ThumbnailSize = Literal["small", "medium", "large"]


class Thumbnails(BaseModel):
    small: str | None = None
    medium: str | None = None
    large: str | None = None


class ImageRead(BaseModel):
    """An image's public metadata."""

    id: uuid.UUID
    filename: str
    content_type: str = Field(description="Detected from the bytes, never from the client")
    file_size: int = Field(description="Size in bytes of the stored (served) file")
    width: int = Field(description="Displayed width: EXIF orientation applied")
    height: int
    frames: int
    checksum: str = Field(description='"sha256:<hex>" of the stored bytes')
    created_at: datetime
    url: str
    thumbnail_status: Literal["pending", "ready", "failed"]
    thumbnail_ready: bool
    thumbnail_url: str | None
    thumbnails: Thumbnails


class ImageUploaded(ImageRead):
    """The upload response; `delete_token` and `delete_url` only for anonymous uploads."""

    delete_token: str | None = None
    delete_url: str | None = None


class ImageList(BaseModel):
    """A page of the caller's images, newest first."""

    items: list[ImageRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class BatchResult(BaseModel):
    filename: str
    status: int
    image: ImageUploaded | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    results: list[BatchResult]
