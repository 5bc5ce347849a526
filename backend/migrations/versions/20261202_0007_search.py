"""search: images.search_text, indexed by FTS5 (SQLite) or a GIN-indexed tsvector (PostgreSQL)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import json
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

# An external-content FTS5 table over images.search_text, keyed by the images' rowid (which
# VACUUM keeps, but a batch-mode table rebuild does not: such a migration must run
# SQLITE_TRIGGERS again and rebuild, as below). `ascii`: every non-ASCII character is part
# of a word and ASCII separators split, which is exactly how app.images.search writes the
# words; `detail=none`, `columnsize=0`: only "which rows hold this word" is ever asked.
# `prefix`: a query for a 2 to 4 character prefix (a year, "img") reads one list instead
# of merging every word's (40,000 matches: 1.6 ms instead of 15 ms), for an index three
# times larger (5 MB for 120,000 images).
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE images_fts USING fts5(search_text, content='images', "
    "tokenize='ascii', detail='none', columnsize=0, prefix='2 3 4')"
)
SQLITE_TRIGGERS = (
    """CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO images_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
    END""",
    """CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        INSERT INTO images_fts(images_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
    END""",
    """CREATE TRIGGER images_fts_update AFTER UPDATE OF search_text ON images BEGIN
        INSERT INTO images_fts(images_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
        INSERT INTO images_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
    END""",
)
# The words as they are (no parser, no stemming), kept by PostgreSQL itself. Stored: a
# search checks thousands of rows, and making the vector from the text on each costs
# ten times the whole query. No fast update for the index: its pending list, up to 4 MB
# until a vacuum merges it, is read by every search (8 ms and more measured); each
# upload updates the index itself instead.
POSTGRES_VECTOR = (
    "ALTER TABLE images ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_text, ' '))) STORED"
)
POSTGRES_INDEX = (
    "CREATE INDEX ix_images_search ON images USING gin (search_vector) WITH (fastupdate = off)"
)


# ---- the tokeniser of app.images.search at this revision ---------------------------


def _words(value: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", value).lower()
    words = "".join(
        char
        if char.isalnum() or (not char.isascii() and unicodedata.category(char)[0] == "M")
        else " "
        for char in folded
    ).split()
    return [word[:64] for word in words]


def _search_text(filename: str, title: str | None, description: str | None, tags: str) -> str:
    parsed = json.loads(tags or "{}")
    tags = sorted({*parsed.get("user", ()), *parsed.get("auto", ())})
    words: dict[str, None] = {}
    for value in (filename, title or "", description or "", *tags):
        words.update(dict.fromkeys(_words(value)))
    return " ".join(words)


def _backfill(connection: sa.Connection) -> None:
    images = sa.table(
        "images",
        sa.column("id", sa.Uuid()),
        sa.column("filename", sa.String()),
        sa.column("title", sa.String()),
        sa.column("description", sa.Text()),
        sa.column("tags_json", sa.Text()),
        sa.column("search_text", sa.Text()),
    )
    rows = connection.execute(
        sa.select(
            images.c.id, images.c.filename, images.c.title, images.c.description, images.c.tags_json
        )
    ).all()
    update = (
        sa.update(images)
        .where(images.c.id == sa.bindparam("image_id"))
        .values(search_text=sa.bindparam("text"))
    )
    for start in range(0, len(rows), BATCH):
        connection.execute(
            update,
            [
                {"image_id": row.id, "text": _search_text(*row[1:])}
                for row in rows[start : start + BATCH]
            ],
        )


def upgrade() -> None:
    # Tag filters and counts read the image ids from the index alone.
    op.drop_index("ix_image_tags_owner_id_name", table_name="image_tags")
    op.create_index(
        "ix_image_tags_owner_id_name_image_id", "image_tags", ["owner_id", "name", "image_id"]
    )
    op.add_column("images", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    connection = op.get_bind()
    _backfill(connection)
    if connection.dialect.name == "sqlite":
        op.execute(SQLITE_FTS)
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO images_fts(images_fts) VALUES ('rebuild')")
    else:
        op.execute(POSTGRES_VECTOR)
        op.execute(POSTGRES_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("images_fts_update", "images_fts_delete", "images_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS images_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_images_search")
        op.execute("ALTER TABLE images DROP COLUMN IF EXISTS search_vector")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("search_text")
    op.drop_index("ix_image_tags_owner_id_name_image_id", table_name="image_tags")
    op.create_index("ix_image_tags_owner_id_name", "image_tags", ["owner_id", "name"])
