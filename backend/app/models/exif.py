"""Camera details read from an upload before its metadata is stripped; never location."""

from __future__ import annotations

import uuid

from sqlalchemy import Float, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ImageExif(Base):
    __tablename__ = "image_exif"

    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    camera_make: Mapped[str | None] = mapped_column(String(100))
    camera_model: Mapped[str | None] = mapped_column(String(100))
    lens: Mapped[str | None] = mapped_column(String(100))
    # ISO 8601 as the camera recorded it: with its offset when the file has one, else
    # the camera's local time without one (so not a UTC timestamp column).
    taken_at: Mapped[str | None] = mapped_column(String(40))
    exposure_time: Mapped[float | None] = mapped_column(Float)  # seconds
    f_number: Mapped[float | None] = mapped_column(Float)
    iso: Mapped[int | None] = mapped_column(Integer)
    focal_length: Mapped[float | None] = mapped_column(Float)  # millimetres
    orientation: Mapped[int | None] = mapped_column(Integer)
