"""An uploaded image: the public metadata and a reference to its blob."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class ThumbnailStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class Visibility(enum.StrEnum):
    UNLISTED = "unlisted"  # anyone with the link
    PRIVATE = "private"  # the owner only (and share links)


class TagsStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    DISABLED = "disabled"


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_created_at_id", "created_at", "id"),
        # "My images", newest first, a page at a time (keyset): one range scan.
        Index("ix_images_owner_id_created_at_id", "owner_id", "created_at", "id"),
        # The sweeper's question, "which pending rows went quiet?", on a tiny partial index.
        Index(
            "ix_images_pending_thumbnails",
            "thumbnail_updated_at",
            postgresql_where=text("thumbnail_status = 'pending'"),
            sqlite_where=text("thumbnail_status = 'pending'"),
        ),
        # The expiry sweeper's question, "what has expired?", on the rows that can.
        Index(
            "ix_images_expires_at",
            "expires_at",
            postgresql_where=text("expires_at IS NOT NULL"),
            sqlite_where=text("expires_at IS NOT NULL"),
        ),
        # The tagger's sweeper: pending tag jobs that went quiet.
        Index(
            "ix_images_pending_tags",
            "tags_updated_at",
            postgresql_where=text("tags_status = 'pending'"),
            sqlite_where=text("tags_status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    blob_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("blobs.sha256", ondelete="RESTRICT"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(32))
    file_size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer, default=1)
    # Owned images (uploaded by a signed-in caller) have no delete token; anonymous
    # ones have no owner. Users with images cannot be deleted out from under them.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="RESTRICT")
    )
    delete_token_hash: Mapped[str | None] = mapped_column(String(64))
    thumbnail_status: Mapped[str] = mapped_column(String(16), default=ThumbnailStatus.PENDING)
    thumbnail_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the thumbnail job was last dispatched or started: pending rows quiet for longer
    # than the sweeper's threshold are dispatched again.
    thumbnail_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # ---- the library (contract section 10) ----
    visibility: Mapped[str] = mapped_column(
        String(16), default=Visibility.UNLISTED, server_default=Visibility.UNLISTED.value
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    title: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # Every tag of the image as JSON, `{"user": [...], "auto": [...]}`: the read path takes
    # them from the row itself. `image_tags` holds the same tags for filters and counts;
    # both are written in the same unit of work (app.images.repository.replace_tags).
    tags_json: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    tags_status: Mapped[str] = mapped_column(
        String(16), default=TagsStatus.PENDING, server_default=TagsStatus.PENDING.value
    )
    tags_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tags_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # The distinct words of filename, title, description and tags (app.images.search),
    # rewritten by every write that changes one of them. Indexed outside the models
    # (migration 0007): an FTS5 table kept by triggers on SQLite, a generated tsvector
    # column with a GIN index on PostgreSQL. Deferred: reading an image never needs it.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="", deferred=True)


# Search objects that migration 0007 creates and the models cannot describe: the FTS5
# table and its shadow tables (SQLite), the tsvector column and its index (PostgreSQL).
# A SQLite migration that rebuilds `images` (batch mode) must recreate the FTS5 triggers
# and rebuild `images_fts`, as 0007 does.
UNMODELLED_SEARCH_OBJECTS = frozenset(
    {
        "images_fts",
        "images_fts_data",
        "images_fts_idx",
        "images_fts_docsize",
        "images_fts_config",
        "images_fts_content",
        "search_vector",
        "ix_images_search",
    }
)
