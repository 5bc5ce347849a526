"""A thumbnail of a blob: one row per size, made once for every image sharing the bytes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Thumbnail(Base):
    __tablename__ = "thumbnails"

    blob_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("blobs.sha256", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[str] = mapped_column(String(8), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the thumbnail's own bytes (ETag)
    file_size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A ThumbHash (base64) of the displayed image, on the "small" row: the blob's
    # placeholder, there exactly while its thumbnails are.
    placeholder: Mapped[str | None] = mapped_column(String(64))


def thumbnail_key(blob_sha256: str, size: str) -> str:
    """Deterministic: a job that runs twice overwrites the same object with the same bytes."""
    return f"thumbnails/{blob_sha256[:2]}/{blob_sha256[2:4]}/{blob_sha256}/{size}.webp"
