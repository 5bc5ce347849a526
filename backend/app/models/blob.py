"""A stored object, keyed by the SHA-256 of its bytes and shared by identical uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Blob(Base):
    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def object_key(sha256: str) -> str:
    """Where the original with this digest lives; fanned out so no folder grows huge."""
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"
