"""Request and response bodies of the albums API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from app.images.schemas import ImageRead, Visibility

MAX_MEMBERS = 1_000  # images per album (contract section 11)

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]
ImageIds = Annotated[
    list[uuid.UUID],
    Field(
        max_length=MAX_MEMBERS,
        description=f"The caller's own image ids, at most {MAX_MEMBERS}; "
        "a repeated id counts once, at its first position",
    ),
]

_ID = "6d1f3c2a-8b4e-4f7a-9c0d-2e5b7a9f1c3e"
_EXAMPLE: JsonDict = {
    "id": _ID,
    "title": "Lisbon, spring 2026",
    "description": "Trams, tiles and the river",
    "visibility": "unlisted",
    "cover_image_id": "0f8b6c1e-3a52-4d8e-9b0a-5c2f7d9e1a34",
    "image_count": 42,
    "created_at": "2026-11-22T09:00:00Z",
    "updated_at": "2026-11-23T18:30:00Z",
    "url": f"https://img.example.com/api/v1/albums/{_ID}",
    "page_url": f"https://img.example.com/a/{_ID}",
}


class AlbumCreate(BaseModel):
    """A new album: a title, and optionally a description and who may see it."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    visibility: Visibility = "unlisted"


class AlbumUpdate(BaseModel):
    """The fields to change; absent ones stay, `description` and `cover_image_id` null
    clear them."""

    model_config = ConfigDict(extra="forbid")

    # Optional but never null: the document must not promise that null is accepted.
    title: Title | SkipJsonSchema[None] = None
    description: Description | None = None
    visibility: Visibility | SkipJsonSchema[None] = None
    cover_image_id: uuid.UUID | None = Field(
        default=None, description="An image of the album; null clears the cover"
    )

    @model_validator(mode="after")
    def _required_not_null(self) -> AlbumUpdate:
        for name in ("title", "visibility"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, by name (an explicit null included)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class AlbumImages(BaseModel):
    """Image ids, in album order."""

    model_config = ConfigDict(extra="forbid")

    image_ids: ImageIds


class AlbumRead(BaseModel):
    """An album as the caller may see it: others see only the images they may see
    (private and expired ones are left out of `image_count` and the cover too)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: uuid.UUID
    title: str
    description: str | None
    visibility: Visibility = Field(
        description='"unlisted": anyone with the link; "private": the owner only'
    )
    cover_image_id: uuid.UUID | None = Field(
        description="The cover image; null when none is set or the caller may not see it"
    )
    image_count: int = Field(description="Images of the album the caller may see")
    created_at: datetime
    updated_at: datetime = Field(description="When the album or its membership last changed")
    url: str = Field(description="The album in the API")
    page_url: str = Field(description="The album's web page")


class AlbumDetail(AlbumRead):
    """An album with a page of its images, in album order."""

    images: list[ImageRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the album's next images; null at the end"
    )


class AlbumList(BaseModel):
    """A page of the caller's albums, newest first."""

    items: list[AlbumRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )
