"""A remembered upload response, so a retried request gets the same answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    # SHA-256 of (caller scope, key): the raw key is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The response body, with the delete token masked by a pad derived from the raw key.
    response_json: Mapped[str] = mapped_column(Text)
    # SHA-256 of the request it answered (route, caller, each file's hash, size and name):
    # a replay must be the same request. Null only on records older than the column.
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
