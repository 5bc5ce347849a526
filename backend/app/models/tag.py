"""A tag on an image: one row per (image, source, name), for filters and counts.

The image row carries the same tags as JSON (`images.tags_json`) so that reading an image
never joins this table."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class TagSource(enum.StrEnum):
    USER = "user"
    AUTO = "auto"


class ImageTag(Base):
    __tablename__ = "image_tags"
    __table_args__ = (
        # "my images tagged X" and "my tags by count": the owner's rows of one name, and
        # their images, from the index alone (migration 0007 added image_id).
        Index("ix_image_tags_owner_id_name_image_id", "owner_id", "name", "image_id"),
    )

    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    # The image's owner, copied so that tag queries stay on this table (null: anonymous).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
