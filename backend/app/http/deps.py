"""Annotated dependencies: how routes reach the resources built in the lifespan.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a worker
thread, and a thread hop costs more than the whole request on a small machine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.albums.service import AlbumService
from app.images.library import LibraryService
from app.images.service import ImageService
from app.images.upload import UploadService
from app.wiring import Resources


def resources_of(request: Request) -> Resources:
    """The lifespan's resources; for hot routes that skip dependency resolution."""
    resources: Resources = request.state.resources
    return resources


async def get_resources(request: Request) -> Resources:
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_image_service(resources: ResourcesDep) -> ImageService:
    return resources.images


ImageServiceDep = Annotated[ImageService, Depends(get_image_service)]


async def get_upload_service(resources: ResourcesDep) -> UploadService:
    return resources.uploads


UploadServiceDep = Annotated[UploadService, Depends(get_upload_service)]


async def get_library_service(resources: ResourcesDep) -> LibraryService:
    return resources.library


LibraryServiceDep = Annotated[LibraryService, Depends(get_library_service)]


async def get_album_service(resources: ResourcesDep) -> AlbumService:
    return resources.albums


AlbumServiceDep = Annotated[AlbumService, Depends(get_album_service)]


# A process-wide cache: docs/adr/0018-unit-of-work.md lists them all, and why.
_BASE_URLS: dict[tuple[str, bytes, str], str] = {}
_MAX_BASE_URLS = 256  # Host headers come from clients: remember only a few


def request_base_url(request: Request) -> str:
    """Scheme, host and root path of this request, without a trailing slash.

    Starlette parses a URL object for `request.base_url` on every call, a measurable share
    of a cached metadata read; the answer only depends on these three values."""
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    key = (scope.get("scheme", "http"), host, scope.get("root_path", ""))
    found = _BASE_URLS.get(key)
    if found is None:
        found = str(request.base_url).rstrip("/")
        if len(_BASE_URLS) < _MAX_BASE_URLS:
            _BASE_URLS[key] = found
    return found


async def base_url(request: Request) -> str:
    return request_base_url(request)


BaseUrlDep = Annotated[str, Depends(base_url)]
