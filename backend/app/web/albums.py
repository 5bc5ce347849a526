"""Album pages: the user's albums (`/albums`), and one album (`/a/{id}`) as its visitor may
see it, with its sharing tags, its zip, and for its owner the controls."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError

from app.albums.schemas import AlbumCreate, AlbumDetail, AlbumRead, AlbumUpdate
from app.errors import AppError
from app.http import routes
from app.http.deps import request_base_url, resources_of
from app.images.errors import ImageNotFound
from app.images.filenames import content_disposition
from app.images.schemas import ImageRead
from app.web.forms import Field, FormProblem, refusal
from app.web.pages import guard_action, page, principal_of, redirect, sign_in_first
from app.web.shown import tile

router = APIRouter(include_in_schema=False)
ALBUMS_PAGE = 24
ALBUM_PAGE = 24
Cursor = Annotated[str | None, Query(max_length=200)]

NOTICES = {
    "added": "Added to the album.",
    "saved": "Saved.",
    "cover": "The cover was changed.",
    "removed": "The image was taken out of the album (it is still in your gallery).",
    "deleted": "The album was deleted.",
}


def _done(done: str | None) -> str | None:
    return NOTICES.get(done or "")


# ---- the user's albums --------------------------------------------------------------


async def _cover(request: Request, album: AlbumRead) -> dict[str, Any] | None:
    """The tile of the album's cover as its owner sees it: the cover, else its first image."""
    resources = resources_of(request)
    principal = principal_of(request)
    base = request_base_url(request)
    try:
        if album.cover_image_id is not None:
            cached, _ = await resources.images.get(album.cover_image_id, principal.user_id)
            return tile(resources.presenter.read(cached, base, principal.user_id))
    except ImageNotFound:
        pass  # deleted or expired meanwhile: the first image stands in
    if not album.image_count:
        return None
    first = await resources.albums.get(album.id, principal, base, limit=1)
    return tile(first.images[0]) if first.images else None


async def _albums_page(
    request: Request,
    cursor: str | None,
    *,
    notice: str | None = None,
    form_error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    resources = resources_of(request)
    found = await resources.albums.list_albums(
        principal_of(request), ALBUMS_PAGE, cursor, request_base_url(request)
    )
    cards = [{"album": album, "cover": await _cover(request, album)} for album in found.items]
    more = f"{routes.PAGE_ALBUMS}?{urlencode({'cursor': found.next_cursor})}"
    context = {
        "cards": cards,
        "more_href": more if found.next_cursor else None,
        "notice": notice,
        "form_error": form_error,
        "form": form or {},
    }
    return await page(request, "albums.html", context, status)


@router.get(routes.PAGE_ALBUMS, response_class=HTMLResponse)
async def albums_page(
    request: Request, cursor: Cursor = None, done: Annotated[str | None, Query()] = None
) -> Response:
    """The signed-in user's albums, newest first, and a form for a new one."""
    signed_out = sign_in_first(request, routes.PAGE_ALBUMS)
    if signed_out is not None:
        return signed_out
    return await _albums_page(request, cursor, notice=_done(done))


@router.post(routes.PAGE_ALBUMS)
async def create_album(
    request: Request,
    title: Field = "",
    description: Field = "",
    visibility: Field = "unlisted",
    csrf_token: Field = "",
) -> Response:
    """A new album; then its page."""
    refused = await guard_action(request, routes.PAGE_ALBUMS, csrf_token)
    if refused is not None:
        return refused
    sent = {"title": title, "description": description, "visibility": visibility}
    try:
        album = await resources_of(request).albums.create(
            principal_of(request),
            AlbumCreate.model_validate({**sent, "description": description.strip() or None}),
            request_base_url(request),
        )
    except (ValidationError, AppError) as exc:
        message = refusal(exc)
        return await _albums_page(request, None, form_error=message, form=sent, status=422)
    return redirect(request, f"/a/{album.id}")


# ---- one album ----------------------------------------------------------------------


def _og_image(detail: AlbumDetail, cover: ImageRead | None) -> str | None:
    """The picture a link preview shows: the cover's large thumbnail, else the first
    image's; never a private one (a crawler could not fetch it)."""
    candidates = [cover] if cover is not None else []
    for image in [*candidates, *detail.images]:
        if image.visibility == "unlisted" and image.thumbnails.large:
            return image.thumbnails.large
    return None


async def _cover_image(request: Request, detail: AlbumDetail) -> ImageRead | None:
    if detail.cover_image_id is None:
        return None
    resources = resources_of(request)
    viewer = principal_of(request).user_id
    try:
        cached, _ = await resources.images.get(detail.cover_image_id, viewer)
    except ImageNotFound:
        return None
    return resources.presenter.read(cached, request_base_url(request), viewer)


def _tiles(album_id: uuid.UUID, detail: AlbumDetail, owned: bool) -> dict[str, Any]:
    more = detail.next_cursor
    query = urlencode({"cursor": more}) if more else ""
    return {
        "tiles": [tile(image) for image in detail.images],
        "next_cursor": more,
        "more_href": f"/a/{album_id}/more?{query}" if more else None,
        "more_fallback": f"/a/{album_id}?{query}" if more else None,
        "album_owner": owned,
        "album_id": album_id,
        "cover_id": detail.cover_image_id,
    }


async def _album_page(
    request: Request,
    album_id: uuid.UUID,
    cursor: str | None = None,
    *,
    notice: str | None = None,
    form_error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    resources = resources_of(request)
    principal = principal_of(request)
    detail = await resources.albums.get(
        album_id, principal, request_base_url(request), cursor, ALBUM_PAGE
    )
    owned = await resources.albums.is_owner(album_id, principal.user_id)
    context = {
        "album": detail,
        "owned": owned,
        "og_image": _og_image(detail, await _cover_image(request, detail)),
        "notice": notice,
        "form_error": form_error,
        **_tiles(album_id, detail, owned),
    }
    return await page(request, "album.html", context, status)


@router.get(routes.PAGE_ALBUM, response_class=HTMLResponse)
async def album_page(
    request: Request,
    album_id: uuid.UUID,
    cursor: Cursor = None,
    done: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """The album: its images as the visitor may see them, its zip; for its owner, the
    controls. A private album is "not found" to everyone else."""
    return await _album_page(request, album_id, cursor, notice=_done(done))


@router.get(routes.PAGE_ALBUM_MORE, response_class=HTMLResponse)
async def album_more(
    request: Request, album_id: uuid.UUID, cursor: Annotated[str, Query(max_length=200)]
) -> HTMLResponse:
    """The album's next tiles and the next "Load more", for HTMX."""
    resources = resources_of(request)
    principal = principal_of(request)
    detail = await resources.albums.get(
        album_id, principal, request_base_url(request), cursor, ALBUM_PAGE
    )
    owned = await resources.albums.is_owner(album_id, principal.user_id)
    return await page(request, "partials/tiles.html", _tiles(album_id, detail, owned))


@router.get(routes.PAGE_ALBUM_DOWNLOAD)
async def album_download(request: Request, album_id: uuid.UUID) -> StreamingResponse:
    """The album's images the visitor may see, as a zip (the owner's browser gets the
    private ones too: this path takes the session cookie, the API does not)."""
    download = await resources_of(request).albums.download(album_id, principal_of(request))
    return StreamingResponse(
        download.chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(download.filename, attachment=True),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---- the owner's changes ------------------------------------------------------------


async def _change(
    request: Request, album_id: uuid.UUID, changes: dict[str, Any], done: str
) -> Response:
    resources = resources_of(request)
    try:
        update = AlbumUpdate.model_validate(changes)
        await resources.albums.update(
            album_id, principal_of(request), update, request_base_url(request)
        )
    except (ValidationError, AppError) as exc:
        return await _album_page(request, album_id, form_error=refusal(exc), status=422)
    return redirect(request, f"/a/{album_id}?done={done}")


@router.post(routes.PAGE_ALBUM_EDIT)
async def edit_album(
    request: Request,
    album_id: uuid.UUID,
    title: Field = "",
    description: Field = "",
    visibility: Field = "unlisted",
    csrf_token: Field = "",
) -> Response:
    """Change the album's title, description or who may see it."""
    refused = await guard_action(request, f"/a/{album_id}", csrf_token)
    if refused is not None:
        return refused
    changes = {
        "title": title,
        "description": description.strip() or None,
        "visibility": visibility,
    }
    return await _change(request, album_id, changes, "saved")


@router.post(routes.PAGE_ALBUM_COVER)
async def set_album_cover(
    request: Request, album_id: uuid.UUID, image_id: Field = "", csrf_token: Field = ""
) -> Response:
    """Make one of the album's images its cover."""
    refused = await guard_action(request, f"/a/{album_id}", csrf_token)
    if refused is not None:
        return refused
    return await _change(request, album_id, {"cover_image_id": image_id}, "cover")


@router.post(routes.PAGE_ALBUM_REMOVE)
async def remove_from_album(
    request: Request, album_id: uuid.UUID, image_id: Field = "", csrf_token: Field = ""
) -> Response:
    """Take one image out of the album; the image stays in the gallery."""
    refused = await guard_action(request, f"/a/{album_id}", csrf_token)
    if refused is not None:
        return refused
    try:
        member = uuid.UUID(image_id)
    except ValueError:
        message = refusal(FormProblem("The image is not valid; reload the page"))
        return await _album_page(request, album_id, form_error=message, status=422)
    await resources_of(request).albums.remove_image(album_id, principal_of(request), member)
    return redirect(request, f"/a/{album_id}?done=removed")


@router.post(routes.PAGE_ALBUM_DELETE)
async def delete_album(
    request: Request,
    album_id: uuid.UUID,
    with_images: Field = "",
    csrf_token: Field = "",
) -> Response:
    """Delete the album; its images too when the owner ticked that."""
    refused = await guard_action(request, f"/a/{album_id}", csrf_token)
    if refused is not None:
        return refused
    albums = resources_of(request).albums
    await albums.delete(album_id, principal_of(request), with_images=with_images == "on")
    return redirect(request, f"{routes.PAGE_ALBUMS}?done=deleted")
