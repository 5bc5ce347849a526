"""Library API routes (contract sections 10 and 11): list and search the caller's images,
edit one, list their tags. Thin: each calls one `LibraryService` function."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import SignedInDep
from app.http import routes
from app.http.deps import BaseUrlDep, LibraryServiceDep
from app.http.openapi import errors
from app.images import router as images_router  # noqa: F401  registers the image_id path convertor
from app.images.library import MAX_TAGS_LISTED
from app.images.schemas import ImageList, ImageRead, ImageUpdate, TagList
from app.images.search import MAX_QUERY_CHARS, ImageQuery, Sort

router = APIRouter(tags=["library"])


@router.get(routes.IMAGES, response_model=ImageList, responses=errors(400, 401, 404, 422, 429))
async def list_images(
    service: LibraryServiceDep,
    caller: SignedInDep,
    base: BaseUrlDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="From next_cursor, with the same sort")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY_CHARS,
            description="Words matched against filename, title, description and tags: "
            "case-insensitive, each a prefix of some word, all required",
            examples=["sunset bay"],
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(description="Only images with this tag (exact, repeatable: all required)"),
    ] = None,
    album: Annotated[
        uuid.UUID | None,
        Query(description="Only images in this album of the caller's (else 404 ALBUM_NOT_FOUND)"),
    ] = None,
    sort: Annotated[Sort, Query(description="By upload time")] = "newest",
) -> ImageList:
    """The caller's images, newest (or oldest) first, a page at a time; filtered by
    words, tags and album when asked. Expired images never appear."""
    query = ImageQuery(q=q, tags=tuple(tag or ()), album_id=album, sort=sort)
    return await service.list_images(caller, limit, cursor, base, query)


@router.patch(routes.IMAGE, response_model=ImageRead, responses=errors(401, 403, 404, 422))
async def update_image(
    image_id: uuid.UUID,
    changes: ImageUpdate,
    service: LibraryServiceDep,
    caller: SignedInDep,
    base: BaseUrlDep,
) -> ImageRead:
    """Change an image's title, description, visibility, expiry or user tags (owner only)."""
    return await service.update(image_id, caller, changes, base)


@router.get(routes.TAGS, response_model=TagList, responses=errors(401, 422))
async def list_tags(
    service: LibraryServiceDep,
    caller: SignedInDep,
    prefix: Annotated[
        str, Query(max_length=60, description="Only tags starting with this (normalised)")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_TAGS_LISTED)] = 100,
) -> TagList:
    """The caller's tags with how many of their images carry each, most used first."""
    return await service.tags(caller, prefix, limit)
