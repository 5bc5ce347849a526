"""The image page: the image, its links and embed codes, and for its owner the edit form,
"add to album", the camera details and delete; and the page paths of a private image's
bytes (see app.web.shown)."""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.albums.schemas import AlbumCreate
from app.errors import AppError
from app.http import routes
from app.http.deps import request_base_url, resources_of
from app.images import serving
from app.images.schemas import ImageRead, ImageUpdate, ThumbnailSize
from app.images.service import exif_of
from app.images.serving import ServedObject
from app.models.base import utcnow
from app.web.forms import EXPIRY_CHOICES, KEEP, Field, FormProblem, expiry_of, refusal, tags_of
from app.web.pages import guard_action, page, principal_of, redirect
from app.web.shown import camera_rows, large_box, shown, tile, user_tags

router = APIRouter(include_in_schema=False)
ALBUM_CHOICES = 100  # albums offered by "add to album"; more are reached from /albums

NOTICES = {
    "saved": "Saved.",
    "added": "Added to the album.",
}


def _share_fields(image: ImageRead) -> list[dict[str, Any]]:
    alt = html.escape(image.title or image.filename, quote=True)
    label = image.filename.replace("[", "\\[").replace("]", "\\]")
    return [
        {"id": "direct-link", "label": "Direct link", "value": image.url, "multiline": False},
        {"id": "page-link", "label": "Page link", "value": image.page_url, "multiline": False},
        {
            "id": "embed-markdown",
            "label": "Markdown",
            "value": f"![{label}]({image.url})",
            "multiline": True,
        },
        {
            "id": "embed-html",
            "label": "HTML",
            "value": f'<img src="{image.url}" alt="{alt}">',
            "multiline": True,
        },
        {
            "id": "embed-bbcode",
            "label": "BBCode",
            "value": f"[img]{image.url}[/img]",
            "multiline": True,
        },
    ]


async def _viewed(request: Request, image_id: uuid.UUID) -> tuple[ImageRead, bool]:
    """The image as the visitor may see it (404 for another's private or an expired
    one), and whether the visitor owns it."""
    resources = resources_of(request)
    viewer = principal_of(request).user_id
    cached, _ = await resources.images.get(image_id, viewer)
    image = resources.presenter.read(cached, request_base_url(request), viewer)
    return shown(image), viewer is not None and cached.owner_id == viewer


async def _image_page(
    request: Request,
    image_id: uuid.UUID,
    *,
    notice: str | None = None,
    form_error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    image, owned = await _viewed(request, image_id)
    context: dict[str, Any] = {
        "image": image,
        "preview_url": image.thumbnails.large or image.url,
        "large_box": large_box(image),
        "share_fields": _share_fields(image),
        "owned": owned,
        "notice": notice,
        "form_error": form_error,
        "form": form or {},
        "expiry_choices": EXPIRY_CHOICES,
    }
    if owned:
        context.update(await _owner_context(request, image))
    return await page(request, "image.html", context, status)


async def _owner_context(request: Request, image: ImageRead) -> dict[str, Any]:
    resources = resources_of(request)
    principal = principal_of(request)
    albums = await resources.albums.list_albums(
        principal, ALBUM_CHOICES, None, request_base_url(request)
    )
    titles = {album.id: album.title for album in albums.items}
    return {
        "camera_rows": camera_rows(await exif_of(resources.images, image.id, principal)),
        "user_tags": user_tags(image),
        "albums": albums.items,
        "in_albums": [(album_id, titles.get(album_id)) for album_id in image.album_ids],
    }


@router.get(routes.PAGE_IMAGE, response_class=HTMLResponse)
async def image_page(
    request: Request, image_id: uuid.UUID, done: Annotated[str | None, Query()] = None
) -> HTMLResponse:
    """The image, its links and embed codes, its details; for its owner its edit form,
    albums, camera details and delete."""
    return await _image_page(request, image_id, notice=NOTICES.get(done or ""))


@router.get(routes.PAGE_IMAGE_PREVIEW, response_class=HTMLResponse)
async def image_preview(request: Request, image_id: uuid.UUID) -> HTMLResponse:
    """The image page's preview, for HTMX to poll until the thumbnail is ready."""
    image, _ = await _viewed(request, image_id)
    context = {"image": image, "large_box": large_box(image)}
    return await page(request, "partials/preview_update.html", context)


@router.get(routes.PAGE_IMAGE_TILE, response_class=HTMLResponse)
async def image_tile(request: Request, image_id: uuid.UUID) -> HTMLResponse:
    """One tile's picture, for HTMX to poll until its thumbnail is ready."""
    image, _ = await _viewed(request, image_id)
    return await page(request, "partials/tile_picture.html", {"tile": tile(image)})


@router.post(routes.PAGE_IMAGE_DELETE)
async def delete_image(
    request: Request, image_id: uuid.UUID, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    """Delete an owned image (anonymous ones are deleted by the page's script with the
    token this browser kept)."""
    refused = await guard_action(request, f"/i/{image_id}", csrf_token)
    if refused is not None:
        return refused
    await resources_of(request).images.delete(image_id, principal_of(request), None)
    return redirect(request, "/gallery?deleted=1")


@router.post(routes.PAGE_IMAGE_EDIT)
async def edit_image(
    request: Request,
    image_id: uuid.UUID,
    title: Field = "",
    description: Field = "",
    tags: Field = "",
    visibility: Field = "unlisted",
    expiry: Field = KEEP,
    expires_on: Field = "",
    csrf_token: Field = "",
) -> Response:
    """Change the owner's image: title, description, tags, who sees it, when it goes."""
    refused = await guard_action(request, f"/i/{image_id}", csrf_token)
    if refused is not None:
        return refused
    sent = {"title": title, "description": description, "tags": tags, "expires_on": expires_on}
    try:
        changes = _image_changes(title, description, tags, visibility, expiry, expires_on)
        await resources_of(request).library.update(
            image_id, principal_of(request), changes, request_base_url(request)
        )
    except (FormProblem, ValidationError, AppError) as exc:
        message = refusal(exc)
        return await _image_page(request, image_id, form_error=message, form=sent, status=422)
    return redirect(request, f"/i/{image_id}?done=saved")


def _image_changes(
    title: str, description: str, tags: str, visibility: str, expiry: str, expires_on: str
) -> ImageUpdate:
    changes: dict[str, Any] = {
        "title": title,
        "description": description,
        "tags": tags_of(tags),
        "visibility": visibility,
    }
    changed, expires_at = expiry_of(expiry, expires_on, utcnow())
    if changed:
        changes["expires_at"] = expires_at
    return ImageUpdate.model_validate(changes)


@router.post(routes.PAGE_IMAGE_ALBUM)
async def add_image_to_album(
    request: Request,
    image_id: uuid.UUID,
    album_id: Field = "",
    new_album: Field = "",
    csrf_token: Field = "",
) -> Response:
    """Put the owner's image in one of their albums, or in a new one."""
    refused = await guard_action(request, f"/i/{image_id}", csrf_token)
    if refused is not None:
        return refused
    try:
        await add_to_album(request, [image_id], album_id, new_album)
    except (FormProblem, ValidationError, AppError) as exc:
        return await _image_page(request, image_id, form_error=refusal(exc), status=422)
    return redirect(request, f"/i/{image_id}?done=added")


async def add_to_album(
    request: Request, image_ids: list[uuid.UUID], album_id: str, new_album: str
) -> uuid.UUID:
    """Append the images to the chosen album, or to a new one titled `new_album` when
    no album is chosen; the album's id."""
    resources = resources_of(request)
    principal = principal_of(request)
    base = request_base_url(request)
    if album_id in ("", "new"):
        if not new_album.strip():
            raise FormProblem("Album: choose one, or give the new album a title")
        created = await resources.albums.create(principal, AlbumCreate(title=new_album), base)
        chosen = created.id
    else:
        try:
            chosen = uuid.UUID(album_id)
        except ValueError as exc:
            raise FormProblem("Album: choose one of yours") from exc
    await resources.albums.add_images(chosen, principal, image_ids, base)
    return chosen


# ---- a private image's bytes, for its owner's browser ---------------------------------


async def _serve(request: Request, obj: ServedObject, download: bool = False) -> Response:
    resources = resources_of(request)
    return await serving.serve(
        obj,
        request.headers,
        head=request.method == "HEAD",
        download=download,
        storage=resources.storage,
        cache=resources.object_cache,
        small_file_bytes=resources.settings.small_file_bytes,
    )


@router.api_route(routes.PAGE_IMAGE_FILE, methods=["GET", "HEAD"])
async def image_file(request: Request, image_id: uuid.UUID, download: bool = False) -> Response:
    """The image's bytes as `GET /images/{id}/file` serves them, to the signed-in browser."""
    viewer = principal_of(request).user_id
    served = await resources_of(request).images.served_object(image_id, viewer)
    return await _serve(request, served, download)


@router.api_route(routes.PAGE_IMAGE_THUMBNAIL, methods=["GET", "HEAD"])
async def image_thumbnail(
    request: Request, image_id: uuid.UUID, size: ThumbnailSize = "medium"
) -> Response:
    """A thumbnail as `GET /images/{id}/thumbnail` serves it, to the signed-in browser."""
    viewer = principal_of(request).user_id
    served = await resources_of(request).images.served_thumbnail(image_id, size, viewer)
    return await _serve(request, served)
