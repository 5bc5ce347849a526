"""Turns a stored image into its API body: its addresses, absolute links and JSON."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import TypeVar

from app.config import Settings
from app.images.cache import CachedImage
from app.images.schemas import ImageRead, ImageUploaded, Thumbnails
from app.images.thumbnails import THUMBNAIL_SIZES
from app.models import ThumbnailStatus

MAX_REMEMBERED_BODIES = 10_000
Body = TypeVar("Body", bound=ImageRead)


class ImagePresenter:
    """Builds `ImageRead` and `ImageUploaded` straight from the stored record."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # read on each call: its public address may change
        # A process-wide cache: docs/adr/0018-unit-of-work.md lists them all, and why.
        self._bodies: OrderedDict[tuple[CachedImage, str, bool], bytes] = OrderedDict()

    def read(self, image: CachedImage, base_url: str, viewer: uuid.UUID | None = None) -> ImageRead:
        """The image's metadata as `viewer` (None: anonymous) sees it, its links absolute."""
        return self._build(ImageRead, image, base_url, viewer)

    def read_json(
        self, image: CachedImage, base_url: str, viewer: uuid.UUID | None = None
    ) -> bytes:
        """`read(...)` as JSON, remembered per value: cached reads skip the schema.

        Keyed by the whole (frozen) value, so a changed image is a new key and can never
        be answered with an old body; old bodies simply age out of the LRU."""
        as_owner = viewer is not None and viewer == image.owner_id
        key = (image, base_url, as_owner)
        body = self._bodies.get(key)
        if body is None:
            body = self.read(image, base_url, viewer).model_dump_json().encode()
            self._bodies[key] = body
            if len(self._bodies) > MAX_REMEMBERED_BODIES:
                self._bodies.popitem(last=False)
        else:
            self._bodies.move_to_end(key)
        return body

    def uploaded(self, image: CachedImage, base_url: str, token: str | None) -> ImageUploaded:
        """The upload's answer: owned images carry no delete token."""
        if token is None:
            return self._build(ImageUploaded, image, base_url, image.owner_id)
        file_url = self._file_url(image.id, base_url)
        return self._build(
            ImageUploaded,
            image,
            base_url,
            None,
            delete_token=token,
            delete_url=delete_url(file_url, token),
        )

    def _base(self, base_url: str) -> str:
        # The configured public address when set, else the request's own.
        return self.settings.public_base_url or base_url.rstrip("/")

    def _image_url(self, image_id: uuid.UUID, base_url: str) -> str:
        return f"{self._base(base_url)}/api/v1/images/{image_id}"

    def page_url(self, image_id: uuid.UUID, base_url: str) -> str:
        """The image's web page."""
        return f"{self._base(base_url)}/i/{image_id}"

    def _file_url(self, image_id: uuid.UUID, base_url: str) -> str:
        return f"{self._image_url(image_id, base_url)}/file"

    def _build(
        self,
        schema: type[Body],
        image: CachedImage,
        base_url: str,
        viewer: uuid.UUID | None,
        **extra: str,
    ) -> Body:
        url = self._image_url(image.id, base_url)
        ready = image.thumbnail_status == ThumbnailStatus.READY
        thumbnails = Thumbnails(
            **{size: f"{url}/thumbnail?size={size}" if ready else None for size in THUMBNAIL_SIZES}
        )
        return schema(
            id=image.id,
            filename=image.filename,
            content_type=image.content_type,
            file_size=image.file_size,
            width=image.width,
            height=image.height,
            frames=image.frames,
            checksum=f"sha256:{image.sha256}",
            created_at=image.created_at,
            url=f"{url}/file",
            thumbnail_status=image.thumbnail_status,
            thumbnail_ready=ready,
            thumbnail_url=thumbnails.medium,
            thumbnails=thumbnails,
            visibility=image.visibility,
            expires_at=image.expires_at,
            title=image.title,
            description=image.description,
            tags=list(image.tags),
            tags_auto=list(image.tags_auto),
            tags_status=image.tags_status,
            album_ids=list(image.album_ids) if viewer and viewer == image.owner_id else [],
            placeholder=image.placeholder if ready else None,
            display_url=f"{url}/file",
            page_url=self.page_url(image.id, base_url),
            **extra,
        )


def delete_url(file_url: str, token: str) -> str:
    """Where to send the DELETE: the image's URL, carrying the token."""
    return f"{file_url.removesuffix('/file')}?delete_token={token}"
