"""Request and response bodies of the images API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from app.schemas import ErrorBody

ThumbnailSize = Literal["small", "medium", "large"]


class Thumbnails(BaseModel):
    small: str | None = None
    medium: str | None = None
    large: str | None = None


_ID = "0f8b6c1e-3a52-4d8e-9b0a-5c2f7d9e1a34"
_BASE = "https://img.example.com/api/v1/images/" + _ID
_EXAMPLE: JsonDict = {
    "id": _ID,
    "filename": "sunset.jpg",
    "content_type": "image/jpeg",
    "file_size": 482113,
    "width": 1600,
    "height": 1067,
    "frames": 1,
    "checksum": "sha256:9f2c4e0d6b1a8f3e7c5d2b9a0e4f6c8d1b3a5e7f9c2d4b6a8e0f1c3d5b7a9e2f",
    "created_at": "2026-11-22T09:00:00Z",
    "url": f"{_BASE}/file",
    "thumbnail_status": "ready",
    "thumbnail_ready": True,
    "thumbnail_url": f"{_BASE}/thumbnail?size=medium",
    "thumbnails": {size: f"{_BASE}/thumbnail?size={size}" for size in ("small", "medium", "large")},
    "visibility": "unlisted",
    "expires_at": None,
    "title": "Sunset over the bay",
    "description": None,
    "tags": ["holiday", "landscape", "orange"],
    "tags_auto": ["landscape", "orange"],
    "tags_status": "ready",
    "album_ids": [],
    "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI",
    "display_url": f"{_BASE}/file",
    "page_url": f"https://img.example.com/i/{_ID}",
}
Visibility = Literal["unlisted", "private"]
TagsStatus = Literal["pending", "ready", "failed", "disabled"]


class ImageRead(BaseModel):
    """An image's public metadata."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

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
    visibility: Visibility = Field(
        description='"unlisted": anyone with the link; "private": the owner only'
    )
    expires_at: datetime | None = Field(description="When it is deleted; null: never")
    title: str | None
    description: str | None
    tags: list[str] = Field(description="Every tag, the user's and the tagger's")
    tags_auto: list[str] = Field(description="The tags the automatic tagger made")
    tags_status: TagsStatus
    album_ids: list[uuid.UUID] = Field(
        description="The owner's albums holding it; empty for anyone else"
    )
    placeholder: str | None = Field(
        description="A ThumbHash (base64) of the image; null until the thumbnails are ready"
    )
    display_url: str = Field(description="A URL every browser can display")
    page_url: str = Field(description="The image's web page")


class ImageUploaded(ImageRead):
    """The upload response; `delete_token` and `delete_url` only for anonymous uploads."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "delete_token": "q3X9vJ0s8mC2yTfR7wLkP1nB5hD4gZ6a",
                    "delete_url": f"{_BASE}?delete_token=q3X9vJ0s8mC2yTfR7wLkP1nB5hD4gZ6a",
                }
            ]
        }
    )

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
