"""Turns a stored album into its API body, with absolute links."""

from __future__ import annotations

import uuid

from app.albums.repository import StoredAlbum
from app.albums.schemas import AlbumRead
from app.config import Settings


class AlbumPresenter:
    """Builds `AlbumRead` from what the viewer may see of an album."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # read on each call: its public address may change

    def read(
        self, album: StoredAlbum, image_count: int, cover_visible: bool, base_url: str
    ) -> AlbumRead:
        """The album as one viewer sees it: `image_count` and the cover are theirs."""
        return AlbumRead(
            id=album.id,
            title=album.title,
            description=album.description,
            visibility=album.visibility,
            cover_image_id=album.cover_image_id if cover_visible else None,
            image_count=image_count,
            created_at=album.created_at,
            updated_at=album.updated_at,
            url=self.url(album.id, base_url),
            page_url=self.page_url(album.id, base_url),
        )

    def _base(self, base_url: str) -> str:
        # The configured public address when set, else the request's own.
        return self.settings.public_base_url or base_url.rstrip("/")

    def url(self, album_id: uuid.UUID, base_url: str) -> str:
        """The album in the API."""
        return f"{self._base(base_url)}/api/v1/albums/{album_id}"

    def page_url(self, album_id: uuid.UUID, base_url: str) -> str:
        """The album's web page."""
        return f"{self._base(base_url)}/a/{album_id}"
