"""thumbnails of blobs, and the thumbnail job's clock on images

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
PENDING = sa.text("thumbnail_status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "thumbnails",
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_sha256"],
            ["blobs.sha256"],
            name=op.f("fk_thumbnails_blob_sha256_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("blob_sha256", "size", name=op.f("pk_thumbnails")),
    )
    op.add_column("images", sa.Column("thumbnail_updated_at", UTC_TIMESTAMP, nullable=True))
    op.execute("UPDATE images SET thumbnail_updated_at = created_at")
    op.create_index(
        "ix_images_pending_thumbnails",
        "images",
        ["thumbnail_updated_at"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_images_pending_thumbnails", table_name="images")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("thumbnail_updated_at")
    op.drop_table("thumbnails")
