"""the library: visibility, expiry, titles, tags, albums, camera details, placeholders

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(
            sa.Column("visibility", sa.String(16), nullable=False, server_default="unlisted")
        )
        batch.add_column(sa.Column("expires_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("title", sa.String(200), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tags_json", sa.Text(), nullable=False, server_default="{}"))
        # Images from before this revision get their automatic tags from the sweeper.
        batch.add_column(
            sa.Column("tags_status", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(
            sa.Column("tags_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("tags_updated_at", UTC_TIMESTAMP, nullable=True))
    op.execute("UPDATE images SET tags_updated_at = created_at")
    op.create_index(
        "ix_images_expires_at",
        "images",
        ["expires_at"],
        postgresql_where=sa.text("expires_at IS NOT NULL"),
        sqlite_where=sa.text("expires_at IS NOT NULL"),
    )
    op.create_index(
        "ix_images_pending_tags",
        "images",
        ["tags_updated_at"],
        postgresql_where=sa.text("tags_status = 'pending'"),
        sqlite_where=sa.text("tags_status = 'pending'"),
    )
    with op.batch_alter_table("thumbnails") as batch:
        batch.add_column(sa.Column("placeholder", sa.String(64), nullable=True))

    op.create_table(
        "image_tags",
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_tags_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "source", "name", name=op.f("pk_image_tags")),
    )
    op.create_index("ix_image_tags_owner_id_name", "image_tags", ["owner_id", "name"])

    op.create_table(
        "albums",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("cover_image_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_albums_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cover_image_id"],
            ["images.id"],
            name=op.f("fk_albums_cover_image_id_images"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_albums")),
    )
    op.create_index("ix_albums_owner_id_created_at_id", "albums", ["owner_id", "created_at", "id"])
    op.create_table(
        "album_images",
        sa.Column("album_id", sa.Uuid(), nullable=False),
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["album_id"],
            ["albums.id"],
            name=op.f("fk_album_images_album_id_albums"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_album_images_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("album_id", "image_id", name=op.f("pk_album_images")),
    )
    op.create_index("ix_album_images_album_id_position", "album_images", ["album_id", "position"])
    op.create_index("ix_album_images_image_id", "album_images", ["image_id"])

    op.create_table(
        "image_exif",
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("camera_make", sa.String(100), nullable=True),
        sa.Column("camera_model", sa.String(100), nullable=True),
        sa.Column("lens", sa.String(100), nullable=True),
        sa.Column("taken_at", sa.String(40), nullable=True),
        sa.Column("exposure_time", sa.Float(), nullable=True),
        sa.Column("f_number", sa.Float(), nullable=True),
        sa.Column("iso", sa.Integer(), nullable=True),
        sa.Column("focal_length", sa.Float(), nullable=True),
        sa.Column("orientation", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_exif_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_exif")),
    )


def downgrade() -> None:
    op.drop_table("image_exif")
    op.drop_index("ix_album_images_image_id", table_name="album_images")
    op.drop_index("ix_album_images_album_id_position", table_name="album_images")
    op.drop_table("album_images")
    op.drop_index("ix_albums_owner_id_created_at_id", table_name="albums")
    op.drop_table("albums")
    op.drop_index("ix_image_tags_owner_id_name", table_name="image_tags")
    op.drop_table("image_tags")
    with op.batch_alter_table("thumbnails") as batch:
        batch.drop_column("placeholder")
    op.drop_index("ix_images_pending_tags", table_name="images")
    op.drop_index("ix_images_expires_at", table_name="images")
    with op.batch_alter_table("images") as batch:
        for column in (
            "tags_updated_at",
            "tags_attempts",
            "tags_status",
            "tags_json",
            "description",
            "title",
            "expires_at",
            "visibility",
        ):
            batch.drop_column(column)
