"""An account: an email, an argon2id password hash, and its storage figures."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("storage_used >= 0", name="storage_used_not_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Stored normalised (see app.auth.schemas.normalise_email), so equality is the
    # case-insensitive comparison and the unique index enforces it.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Bytes of every image this user uploaded, deduplicated or not; kept exact by the
    # same transactions that insert and delete image rows.
    storage_used: Mapped[int] = mapped_column(BigInteger, default=0)
    # NULL follows DEFAULT_QUOTA_BYTES, so an operator's change reaches existing users.
    storage_quota: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
