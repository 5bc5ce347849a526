"""Cached metadata values for cache tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.images.cache import CachedImage


def cached_image(image_id: uuid.UUID, filename: str = "a.png") -> CachedImage:
    return CachedImage(
        id=image_id,
        filename=filename,
        content_type="image/png",
        file_size=1,
        width=1,
        height=1,
        frames=1,
        sha256="0" * 64,
        created_at=datetime.now(UTC),
        thumbnail_status="pending",
    )
