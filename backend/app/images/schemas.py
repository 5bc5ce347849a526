"""Request and response bodies of the images API."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from app.images.options import MAX_DESCRIPTION, MAX_EXPIRES_SECONDS, MAX_TITLE
from app.images.tags import MAX_TAG_CHARS, MAX_USER_TAGS, normalise_tag
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


def _no_controls(value: str, allowed: str = "") -> str:
    if any(unicodedata.category(char) == "Cc" and char not in allowed for char in value):
        raise ValueError("Must not contain control characters")
    return value


def _title(value: str | None) -> str | None:
    """Trimmed; an empty title is no title."""
    if value is None:
        return None
    return _no_controls(value.strip()) or None


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    return _no_controls(value.strip(), "\t\n\r") or None


def _tag(value: str) -> str:
    return normalise_tag(value)  # InvalidTag is a ValueError: a 422 naming the tag


def _user_tags(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    tags = list(dict.fromkeys(value))  # duplicates after normalisation collapse
    if len(tags) > MAX_USER_TAGS:
        raise ValueError(f"At most {MAX_USER_TAGS} tags per image ({len(tags)} given)")
    return tags


def _future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    now = datetime.now(UTC)
    if value <= now:
        raise ValueError("Must be in the future")
    if value > now + timedelta(seconds=MAX_EXPIRES_SECONDS):
        raise ValueError("Too far in the future")
    return value.astimezone(UTC)


class ImageUpdate(BaseModel):
    """`PATCH /images/{id}`: only the fields sent change; null clears a field (`tags`:
    null or `[]` removes the user's tags, the tagger's stay)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"title": "Sunset over the bay", "tags": ["holiday", "Bay Area"]},
                {"visibility": "private", "expires_at": "2027-01-01T00:00:00Z"},
            ]
        },
    )

    title: Annotated[str | None, Field(max_length=MAX_TITLE), AfterValidator(_title)] = None
    description: Annotated[
        str | None, Field(max_length=MAX_DESCRIPTION), AfterValidator(_description)
    ] = None
    visibility: Visibility = "unlisted"
    expires_at: Annotated[
        AwareDatetime | None,
        Field(description="With its offset; in the future; null: never"),
        AfterValidator(_future),
    ] = None
    tags: Annotated[
        list[Annotated[str, AfterValidator(_tag)]] | None,
        Field(
            max_length=4 * MAX_USER_TAGS,
            description=f"Replaces the user's tags: at most {MAX_USER_TAGS}, each 1 to "
            f"{MAX_TAG_CHARS} letters, digits, spaces, '-' or '_' (lower-cased)",
        ),
        AfterValidator(_user_tags),
    ] = None


class TagCount(BaseModel):
    name: str
    count: int = Field(description="How many of the caller's images carry it")


class TagList(BaseModel):
    """The caller's tags, most used first, then by name."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"name": "holiday", "count": 42}, {"name": "cat", "count": 7}]}]
        }
    )

    items: list[TagCount]


class ExifRead(BaseModel):
    """Camera details read from the upload before its metadata was stripped (the owner's
    only; never location). Each field is null when the file did not record it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "camera_make": "FUJIFILM",
                    "camera_model": "X-T5",
                    "lens": "FUJIFILM XF35mmF1.4 R",
                    "taken_at": "2024-05-01T14:22:33+02:00",
                    "exposure_time": 0.004,
                    "f_number": 2.8,
                    "iso": 400,
                    "focal_length": 35.0,
                    "width": 4000,
                    "height": 6000,
                    "orientation": 6,
                }
            ]
        }
    )

    camera_make: str | None
    camera_model: str | None
    lens: str | None = Field(description="LensModel, after LensMake when it does not name it")
    taken_at: str | None = Field(
        description="ISO 8601 as the camera recorded it: with its offset when the file has "
        "one (OffsetTimeOriginal), else the camera's local time without an offset"
    )
    exposure_time: float | None = Field(description="Seconds (1/250 s is 0.004)")
    f_number: float | None
    iso: int | None
    focal_length: float | None = Field(description="Millimetres")
    width: int = Field(description="Of the stored image, as displayed")
    height: int = Field(description="Of the stored image, as displayed")
    orientation: int | None = Field(description="The EXIF Orientation, 1 to 8")
