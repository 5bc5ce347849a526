"""The gallery: the signed-in user's images, searched by words, filtered by tags and by
album, sorted, paged with "load more"; and what to do with a selection of them (add to
an album, make private or unlisted, delete)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.errors import AppError
from app.http import routes
from app.http.deps import request_base_url, resources_of
from app.images.errors import ImageNotFound
from app.images.schemas import ImageUpdate
from app.images.search import MAX_QUERY_CHARS, ImageQuery, Sort
from app.models.base import utcnow
from app.web.forms import EXPIRY_CHOICES, Field, FormProblem, expiry_of, image_ids_of, refusal
from app.web.images import ALBUM_CHOICES, add_to_album
from app.web.pages import guard_action, local_path, page, principal_of, redirect, sign_in_first
from app.web.shown import tile

router = APIRouter(include_in_schema=False)
GALLERY_PAGE = 24
TOP_TAGS = 20  # the chips offered: the user's most used tags

Selected = Annotated[list[str], Form(max_length=GALLERY_PAGE * 40)]


@dataclass(frozen=True, slots=True)
class Filters:
    """What the gallery shows, as its URL says: every link keeps the filters it does not
    change."""

    q: str = ""
    tags: tuple[str, ...] = ()
    album: uuid.UUID | None = None
    sort: Sort = "newest"

    @property
    def any(self) -> bool:
        return bool(self.q or self.tags or self.album)

    def query(self) -> ImageQuery:
        return ImageQuery(self.q or None, self.tags, self.album, self.sort)

    def params(self) -> list[tuple[str, str]]:
        found = [("q", self.q)] if self.q else []
        found += [("tag", tag) for tag in self.tags]
        found += [("album", str(self.album))] if self.album else []
        return found + ([("sort", self.sort)] if self.sort != "newest" else [])

    def href(self, path: str = routes.PAGE_GALLERY, **extra: str) -> str:
        query = urlencode([*self.params(), *extra.items()])
        return f"{path}?{query}" if query else path

    def toggled(self, tag: str) -> Filters:
        tags = tuple(t for t in self.tags if t != tag)
        return replace(self, tags=tags if tag in self.tags else (*self.tags, tag))


def _filters(q: str, tags: list[str], album: uuid.UUID | None, sort: Sort) -> Filters:
    distinct = tuple(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
    return Filters(q.strip(), distinct, album, sort)


Q = Annotated[str, Query(max_length=MAX_QUERY_CHARS)]
Tags = Annotated[list[str], Query(max_length=20)]
Cursor = Annotated[str | None, Query(max_length=200)]


async def _tiles(request: Request, filters: Filters, cursor: str | None) -> dict[str, Any]:
    library = resources_of(request).library
    found = await library.list_images(
        principal_of(request), GALLERY_PAGE, cursor, request_base_url(request), filters.query()
    )
    more = found.next_cursor
    return {
        "tiles": [tile(image) for image in found.items],
        "next_cursor": more,
        "more_href": filters.href(routes.PAGE_GALLERY_MORE, cursor=more) if more else None,
        "more_fallback": filters.href(cursor=more) if more else None,
        "selectable": True,
    }


async def _chips(request: Request, filters: Filters) -> list[dict[str, Any]]:
    """The top tags as toggles, and any active tag that is not among them."""
    tags = await resources_of(request).library.tags(principal_of(request), limit=TOP_TAGS)
    counts = {tag.name: tag.count for tag in tags.items}
    names = [*counts, *(t for t in filters.tags if t not in counts)]
    return [
        {
            "name": name,
            "count": counts.get(name),
            "active": name in filters.tags,
            "href": filters.toggled(name).href(),
        }
        for name in names
    ]


async def _active(request: Request, filters: Filters) -> list[dict[str, str]]:
    """The filters in force, each with the link that removes it."""
    active = []
    if filters.q:
        active.append({"label": f"Words: {filters.q}", "href": replace(filters, q="").href()})
    for tag in filters.tags:
        active.append({"label": f"Tag: {tag}", "href": filters.toggled(tag).href()})
    if filters.album:
        album = await resources_of(request).albums.get(
            filters.album, principal_of(request), request_base_url(request), limit=1
        )
        active.append(
            {"label": f"Album: {album.title}", "href": replace(filters, album=None).href()}
        )
    return active


NOTICES = {
    "deleted": "The image was deleted.",
    "none": "Select one or more images first.",
    "private": "The selected images are now private.",
    "unlisted": "The selected images are now unlisted.",
    "expiry": "The selected images' expiry was changed.",
}


@router.get(routes.PAGE_GALLERY, response_class=HTMLResponse)
async def gallery(
    request: Request,
    q: Q = "",
    tag: Tags = [],  # noqa: B006 (FastAPI copies defaults)
    album: uuid.UUID | None = None,
    sort: Sort = "newest",
    cursor: Cursor = None,
    deleted: Annotated[int, Query(ge=0, le=100_000)] = 0,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The signed-in user's images, searched, filtered and sorted, as thumbnails."""
    filters = _filters(q, tag, album, sort)
    signed_out = sign_in_first(request, filters.href(cursor=cursor) if cursor else filters.href())
    if signed_out is not None:
        return signed_out
    context = await _tiles(request, filters, cursor)
    albums = await resources_of(request).albums.list_albums(
        principal_of(request), ALBUM_CHOICES, None, request_base_url(request)
    )
    notice = NOTICES.get(done or "")
    if deleted:
        notice = "The image was deleted." if deleted == 1 else f"{deleted} images were deleted."
    context.update(
        {
            "filters": filters,
            "chips": await _chips(request, filters),
            "active": await _active(request, filters),
            "albums": albums.items,
            "expiry_choices": EXPIRY_CHOICES,
            "back": filters.href(),
            "notice": notice,
        }
    )
    return await page(request, "gallery.html", context)


@router.get(routes.PAGE_GALLERY_MORE, response_class=HTMLResponse)
async def gallery_more(
    request: Request,
    cursor: Annotated[str, Query(max_length=200)],
    q: Q = "",
    tag: Tags = [],  # noqa: B006 (FastAPI copies defaults)
    album: uuid.UUID | None = None,
    sort: Sort = "newest",
) -> Response:
    """The next tiles and the next "Load more", for HTMX, under the same filters."""
    filters = _filters(q, tag, album, sort)
    return await page(request, "partials/tiles.html", await _tiles(request, filters, cursor))


# ---- the selection ------------------------------------------------------------------


def _back(back: str) -> str:
    """Where a selection's action returns: the gallery as it was filtered."""
    target = local_path(back, routes.PAGE_GALLERY)
    return target if target.startswith(routes.PAGE_GALLERY) else routes.PAGE_GALLERY


def _with(back: str, **params: str) -> str:
    return f"{back}{'&' if '?' in back else '?'}{urlencode(params)}"


@router.post(routes.PAGE_GALLERY_ALBUM)
async def selection_to_album(
    request: Request,
    image_ids: Selected = [],  # noqa: B006 (FastAPI copies defaults)
    album_id: Field = "",
    new_album: Field = "",
    back: Field = routes.PAGE_GALLERY,
    csrf_token: Field = "",
) -> Response:
    """Add the selected images to one of the user's albums, or to a new one; then to it."""
    refused = await guard_action(request, _back(back), csrf_token)
    if refused is not None:
        return refused
    if not image_ids:
        return redirect(request, _with(_back(back), done="none"))
    try:
        chosen = await add_to_album(request, image_ids_of(image_ids), album_id, new_album)
    except (FormProblem, ValidationError, AppError) as exc:
        return await _refused(request, back, refusal(exc))
    return redirect(request, f"/a/{chosen}?done=added")


@router.post(routes.PAGE_GALLERY_VISIBILITY)
async def selection_visibility(
    request: Request,
    image_ids: Selected = [],  # noqa: B006 (FastAPI copies defaults)
    visibility: Field = "",
    back: Field = routes.PAGE_GALLERY,
    csrf_token: Field = "",
) -> Response:
    """Make the selected images private, or unlisted."""
    refused = await guard_action(request, _back(back), csrf_token)
    if refused is not None:
        return refused
    if not image_ids:
        return redirect(request, _with(_back(back), done="none"))
    resources = resources_of(request)
    try:
        changes = ImageUpdate.model_validate({"visibility": visibility})
        for image_id in image_ids_of(image_ids):
            await resources.library.update(
                image_id, principal_of(request), changes, request_base_url(request)
            )
    except (FormProblem, ValidationError, AppError) as exc:
        return await _refused(request, back, refusal(exc))
    return redirect(request, _with(_back(back), done=changes.visibility))


@router.post(routes.PAGE_GALLERY_EXPIRY)
async def selection_expiry(
    request: Request,
    image_ids: Selected = [],  # noqa: B006 (FastAPI copies defaults)
    expiry: Field = "",
    expires_on: Field = "",
    back: Field = routes.PAGE_GALLERY,
    csrf_token: Field = "",
) -> Response:
    """Set when the selected images are deleted (or that they never are)."""
    refused = await guard_action(request, _back(back), csrf_token)
    if refused is not None:
        return refused
    if not image_ids:
        return redirect(request, _with(_back(back), done="none"))
    resources = resources_of(request)
    try:
        changed, expires_at = expiry_of(expiry, expires_on, utcnow())
        if not changed:
            raise FormProblem("Expiry: choose one of the options")
        changes = ImageUpdate.model_validate({"expires_at": expires_at})
        for image_id in image_ids_of(image_ids):
            await resources.library.update(
                image_id, principal_of(request), changes, request_base_url(request)
            )
    except (FormProblem, ValidationError, AppError) as exc:
        return await _refused(request, back, refusal(exc))
    return redirect(request, _with(_back(back), done="expiry"))


@router.post(routes.PAGE_GALLERY_DELETE)
async def selection_delete(
    request: Request,
    image_ids: Selected = [],  # noqa: B006 (FastAPI copies defaults)
    back: Field = routes.PAGE_GALLERY,
    csrf_token: Field = "",
) -> Response:
    """Delete the selected images for good (the page asks first)."""
    refused = await guard_action(request, _back(back), csrf_token)
    if refused is not None:
        return refused
    if not image_ids:
        return redirect(request, _with(_back(back), done="none"))
    try:
        chosen = image_ids_of(image_ids)
    except FormProblem as exc:
        return await _refused(request, back, str(exc))
    images = resources_of(request).images
    deleted = 0
    for image_id in chosen:
        try:
            await images.delete(image_id, principal_of(request), None)
        except ImageNotFound:
            continue  # gone meanwhile (deleted elsewhere, or expired): gone all the same
        deleted += 1
    return redirect(request, _with(_back(back), deleted=str(deleted)))


async def _refused(request: Request, back: str, message: str) -> HTMLResponse:
    context = {"title": "Nothing was changed", "message": message, "back": _back(back)}
    return await page(request, "refused.html", context, status=422)
