"""Images API routes: thin, each calls one service function and returns a schema."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.convertors import StringConvertor, register_url_convertor

from app.auth.dependencies import PrincipalDep, SignedInDep
from app.http import routes
from app.http.deps import (
    BaseUrlDep,
    ImageServiceDep,
    UploadServiceDep,
    request_base_url,
    resources_of,
)
from app.http.openapi import OPTIONAL_AUTH, errors
from app.images import serving
from app.images.requests import upload_request
from app.images.schemas import (
    BatchResponse,
    ExifRead,
    ImageRead,
    ImageUploaded,
    ThumbnailSize,
)
from app.images.service import exif_of
from app.images.serving import ServedObject

router = APIRouter(tags=["images"])
F = TypeVar("F", bound=Callable[..., Any])


class _ImageIdConvertor(StringConvertor):
    """A path segment other than this router's fixed ones: `GET /images/batch` is then a
    405 (the path exists, for POST) rather than a 422 for a malformed image id."""

    regex = r"(?!(?:upload|batch)(?:/|$))[^/]+"


register_url_convertor("image_id", _ImageIdConvertor())


def viewer_of(request: Request) -> uuid.UUID | None:
    """The signed-in caller's id (None: anonymous), as the auth middleware resolved it;
    the hot read routes take it from there instead of resolving a dependency."""
    return request.state.principal.user_id  # type: ignore[no-any-return]


# The optional form fields of an upload (app.images.options), the same for a batch.
_UPLOAD_FIELDS_TEXT = (
    "Optional text fields besides the file(s): `title` (at most 200 characters), "
    "`description` (at most 2,000), `visibility` (`unlisted`, the default, or `private`: "
    "only the owner sees it; needs an account), and an expiry: `expires_in` (whole "
    "seconds, at least 1; or the `Expires-In` header) or `expires_at` (an ISO 8601 "
    "date-time with its offset, in the future). Empty fields count as absent."
)


def _multipart(field: str, many: bool) -> dict[str, Any]:
    item = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": item} if many else item
    return {
        "requestBody": {
            "required": True,
            # The optional text fields are described, not declared: in multipart every
            # field is text, which fuzzers cannot tell from a typed JSON property.
            "description": _UPLOAD_FIELDS_TEXT,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [field],
                        "properties": {field: schema},
                    }
                }
            },
        },
    }


@router.post(
    routes.IMAGES_UPLOAD,
    status_code=status.HTTP_201_CREATED,
    response_model=ImageUploaded,
    response_model_exclude_none=False,
    responses=errors(400, 401, 408, 413, 415, 422, 429),
    openapi_extra={**_multipart("file", many=False), **OPTIONAL_AUTH},
)
async def upload_image(
    request: Request,
    service: UploadServiceDep,
    caller: PrincipalDep,
    base: BaseUrlDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[ -~]+$",
            description="1 to 255 printable ASCII characters; a retry with the same key "
            "from the same caller within 24 h returns the first answer",
            examples=["3f1c9a7e-upload-42"],
        ),
    ] = None,
) -> ImageUploaded:
    """Upload one image (multipart field `file`). Signed-in callers own it and count it
    against their quota; anonymous uploads get a delete token instead."""
    return await service.upload(upload_request(request, caller, base, idempotency_key))


@router.post(
    routes.IMAGES_BATCH,
    response_model=BatchResponse,
    responses=errors(400, 401, 408, 413, 422, 429),
    openapi_extra={**_multipart("files", many=True), **OPTIONAL_AUTH},
)
async def upload_batch(
    request: Request, service: UploadServiceDep, caller: PrincipalDep, base: BaseUrlDep
) -> BatchResponse:
    """Upload several images (repeated field `files`); each gets its own result, and
    each counts as one upload against the rate limit."""
    upload = upload_request(request, caller, base)
    charge = partial(resources_of(request).limiter.charge_extra_file, request.scope)
    return BatchResponse(
        results=await service.upload_batch(replace(upload, charge_extra_file=charge))
    )


@router.get(routes.IMAGE, response_model=ImageRead, responses=errors(404, 422))
async def get_image(image_id: uuid.UUID, request: Request) -> Response:
    """An image's metadata; `X-Cache` says whether the cache answered."""
    # The hot read paths resolve no dependencies: each one costs tens of microseconds.
    resources = resources_of(request)
    viewer = viewer_of(request)
    image, cache_result = await resources.images.get(image_id, viewer)
    # Serialised here, once: the schema already validated it (FastAPI would do it again).
    return Response(
        resources.presenter.read_json(image, request_base_url(request), viewer),
        media_type="application/json",
        headers={"X-Cache": cache_result},
    )


def _bytes_responses(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {}}, "description": what},
        206: {"content": {media_type: {}}, "description": "The requested byte range"},
        304: {"description": "Not modified (If-None-Match matched)"},
        **errors(404, 416, 422),
    }


def _bytes_route(path: str, name: str, media_type: str, what: str) -> Callable[[F], F]:
    """GET and HEAD of a stored object, with its documented responses."""
    responses = _bytes_responses(media_type, what)

    def register(endpoint: F) -> F:
        for method in ("get", "head"):
            getattr(router, method)(
                path,
                operation_id=f"{method}_{name}",
                response_class=Response,
                responses=responses,
            )(endpoint)
        return endpoint

    return register


async def _serve(request: Request, obj: ServedObject, *, download: bool = False) -> Response:
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


@_bytes_route(routes.IMAGE_FILE, "image_file", "image/*", "The image bytes")
async def get_image_file(
    image_id: uuid.UUID,
    request: Request,
    download: Annotated[bool, Query(description="Serve as an attachment")] = False,
) -> Response:
    """The stored image bytes, with validators, ranges and safe headers."""
    served = await resources_of(request).images.served_object(image_id, viewer_of(request))
    return await _serve(request, served, download=download)


@_bytes_route(routes.IMAGE_THUMBNAIL, "image_thumbnail", "image/webp", "The thumbnail (WebP)")
async def get_image_thumbnail(
    image_id: uuid.UUID,
    request: Request,
    size: Annotated[ThumbnailSize, Query(description="Max side 150, 300 or 800 px")] = "medium",
) -> Response:
    """A WebP thumbnail; 404 `THUMBNAIL_NOT_READY` (with `Retry-After`) while it is made."""
    images = resources_of(request).images
    served = await images.served_thumbnail(image_id, size, viewer_of(request))
    return await _serve(request, served)


@router.delete(
    routes.IMAGE,
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(403, 404, 422),
    openapi_extra=OPTIONAL_AUTH,
)
async def delete_image(
    image_id: uuid.UUID,
    service: ImageServiceDep,
    caller: PrincipalDep,
    x_delete_token: Annotated[str | None, Header()] = None,
    delete_token: Annotated[str | None, Query()] = None,
) -> Response:
    """Delete an image: its owner, or anyone with its delete token (anonymous uploads).
    Its file, thumbnails and metadata are gone at once."""
    await service.delete(image_id, caller, x_delete_token or delete_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(routes.IMAGE_EXIF, response_model=ExifRead, responses=errors(401, 403, 404, 422))
async def get_image_exif(
    image_id: uuid.UUID, service: ImageServiceDep, caller: SignedInDep
) -> ExifRead:
    """Your image's camera details (make, model, lens, exposure...); never its location."""
    return await exif_of(service, image_id, caller)
