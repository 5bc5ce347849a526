"""Albums API routes: thin, each calls one service function and returns a schema."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse

from app.albums.schemas import (
    AlbumCreate,
    AlbumDetail,
    AlbumImages,
    AlbumList,
    AlbumRead,
    AlbumUpdate,
)
from app.auth.dependencies import PrincipalDep, SignedInDep
from app.http import routes
from app.http.deps import AlbumServiceDep, BaseUrlDep
from app.http.openapi import OPTIONAL_AUTH, errors
from app.images.filenames import content_disposition

router = APIRouter(tags=["albums"])

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200, description="From next_cursor")]


@router.post(
    routes.ALBUMS,
    status_code=status.HTTP_201_CREATED,
    response_model=AlbumRead,
    responses=errors(400, 401, 422),
)
async def create_album(
    body: AlbumCreate, service: AlbumServiceDep, caller: SignedInDep, base: BaseUrlDep
) -> AlbumRead:
    """Create an empty album of the caller's."""
    return await service.create(caller, body, base)


@router.get(routes.ALBUMS, response_model=AlbumList, responses=errors(400, 401, 422))
async def list_albums(
    service: AlbumServiceDep,
    caller: SignedInDep,
    base: BaseUrlDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> AlbumList:
    """The caller's albums, newest first, a page at a time."""
    return await service.list_albums(caller, limit, cursor, base)


@router.get(
    routes.ALBUM,
    response_model=AlbumDetail,
    responses=errors(400, 404, 422),
    openapi_extra=OPTIONAL_AUTH,
)
async def get_album(
    album_id: uuid.UUID,
    service: AlbumServiceDep,
    caller: PrincipalDep,
    base: BaseUrlDep,
    limit: Limit = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="From next_cursor: the next images")
    ] = None,
) -> AlbumDetail:
    """An album (its owner's, or anyone's when unlisted) and a page of its images."""
    return await service.get(album_id, caller, base, cursor, limit)


@router.patch(routes.ALBUM, response_model=AlbumRead, responses=errors(400, 401, 403, 404, 422))
async def update_album(
    album_id: uuid.UUID,
    body: AlbumUpdate,
    service: AlbumServiceDep,
    caller: SignedInDep,
    base: BaseUrlDep,
) -> AlbumRead:
    """Change an album's title, description, visibility or cover (owner only)."""
    return await service.update(album_id, caller, body, base)


@router.delete(
    routes.ALBUM, status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422)
)
async def delete_album(
    album_id: uuid.UUID,
    service: AlbumServiceDep,
    caller: SignedInDep,
    with_images: Annotated[
        bool, Query(description="Delete the album's images too, as DELETE /images/{id} does")
    ] = False,
) -> Response:
    """Delete an album (owner only); its images stay unless `with_images=true`."""
    await service.delete(album_id, caller, with_images)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    routes.ALBUM_IMAGES, response_model=AlbumRead, responses=errors(400, 401, 403, 404, 422)
)
async def set_album_images(
    album_id: uuid.UUID,
    body: AlbumImages,
    service: AlbumServiceDep,
    caller: SignedInDep,
    base: BaseUrlDep,
) -> AlbumRead:
    """Set an album's images and their order: only the caller's own images (403 otherwise)."""
    return await service.set_images(album_id, caller, body.image_ids, base)


@router.post(
    routes.ALBUM_IMAGES, response_model=AlbumRead, responses=errors(400, 401, 403, 404, 422)
)
async def add_album_images(
    album_id: uuid.UUID,
    body: AlbumImages,
    service: AlbumServiceDep,
    caller: SignedInDep,
    base: BaseUrlDep,
) -> AlbumRead:
    """Append images to an album, skipping those already in it (at most 1,000 in all)."""
    return await service.add_images(album_id, caller, body.image_ids, base)


@router.delete(
    routes.ALBUM_IMAGE,
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 422),
)
async def remove_album_image(
    album_id: uuid.UUID, image_id: uuid.UUID, service: AlbumServiceDep, caller: SignedInDep
) -> Response:
    """Take one image out of an album (the image stays); 404 when it is not in it."""
    await service.remove_image(album_id, caller, image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    routes.ALBUM_DOWNLOAD,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The album as a zip"},
        **errors(404, 422),
    },
    openapi_extra=OPTIONAL_AUTH,
)
async def download_album(
    album_id: uuid.UUID, service: AlbumServiceDep, caller: PrincipalDep
) -> StreamingResponse:
    """The album's images the caller may see, as a zip streamed as it is made: the
    originals as served, in album order, repeated names numbered ("a (2).jpg")."""
    download = await service.download(album_id, caller)
    return StreamingResponse(
        download.chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(download.filename, attachment=True),
            "Cache-Control": "private, no-store",  # its contents change with the album
            "X-Content-Type-Options": "nosniff",
        },
    )
