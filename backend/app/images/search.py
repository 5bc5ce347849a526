"""Searching a user's images: one tokeniser for both databases, and the SQL that matches.

Each image row carries `search_text`: the distinct words of its filename, title,
description and tags, NFKC-normalised, lower-cased, separated by single spaces. A word
is a run of letters, digits and combining marks, so `IMG_2023-10.jpg` is `img 2023 10
jpg` and `Café 日本` is `café 日本`. The databases index those words exactly as written
(no stemming, no parser of their own): SQLite through an FTS5 table with the `ascii`
tokenizer (its separators are exactly the ASCII non-alphanumerics, and our words hold
none), PostgreSQL through a GIN index on a stored tsvector column made of them by
`array_to_tsvector(string_to_array(...))`. A query is tokenised by the same function,
and every word must be a prefix of some word of the image (migration 0007 builds both).
Words are cut at MAX_WORD_CHARS, in the text and in queries alike: PostgreSQL refuses
longer lexemes, and nobody types a longer prefix.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR

from app.models import AlbumImage, Image, ImageTag, TagSource

Sort = Literal["newest", "oldest"]
MAX_QUERY_CHARS = 200
MAX_WORD_CHARS = 64


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """What `GET /images` filters by, as the client gave it; the defaults list every
    image of the caller, newest first."""

    q: str | None = None
    tags: tuple[str, ...] = ()
    album_id: uuid.UUID | None = None
    sort: Sort = "newest"


@dataclass(frozen=True, slots=True)
class Filters:
    """An `ImageQuery` made ready for SQL: its words and its normalised tags."""

    words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    album_id: uuid.UUID | None = None
    sort: Sort = "newest"

    @property
    def plain(self) -> bool:
        """No filter at all: the listing's own keyset path."""
        return not (self.words or self.tags or self.album_id)


def _word_char(char: str) -> bool:
    return char.isalnum() or (not char.isascii() and unicodedata.category(char)[0] == "M")


def words_of(value: str) -> list[str]:
    """The search words of `value`, in order (duplicates kept), cut at MAX_WORD_CHARS."""
    folded = unicodedata.normalize("NFKC", value).lower()
    words = "".join(char if _word_char(char) else " " for char in folded).split()
    return [word[:MAX_WORD_CHARS] for word in words]


def search_text_of(
    filename: str, title: str | None, description: str | None, tags: Iterable[str]
) -> str:
    """`images.search_text` for these fields: their distinct words."""
    words: dict[str, None] = {}
    for value in (filename, title or "", description or "", *tags):
        words.update(dict.fromkeys(words_of(value)))
    return " ".join(words)


def query_words(q: str | None) -> tuple[str, ...]:
    """The words a query must all match; a word that is a prefix of another one is
    implied by it and dropped (`ca cat` asks no more than `cat`)."""
    words = sorted(set(words_of(q or "")), key=len, reverse=True)
    kept: list[str] = []
    for word in words:
        if not any(longer.startswith(word) for longer in kept):
            kept.append(word)
    return tuple(sorted(kept))


def fts5_query(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every word as a quoted prefix. Words hold no quotes or
    operators (only letters, digits and marks), so nothing a user types is syntax."""
    return " ".join(f'"{word}"*' for word in words)


def tsquery(words: Sequence[str]) -> str:
    """A PostgreSQL tsquery: every word as a quoted prefix lexeme, all required."""
    return " & ".join(f"'{word}':*" for word in words)


# ---- the SQL ------------------------------------------------------------------------
#
# A filter has two forms. Its *list* form names the matching images from the filter's own
# index (FTS5 or GIN, the owner's tag rows, the album's members); its *check* form tests
# one image row at a time. Which is cheaper depends on how many images match and when: a
# common word fills a page from the first rows of the owner's newest-first index, a rare
# one is found fastest from its index, then sorted. PostgreSQL's planner chooses from its
# statistics (so the values are inlined: a generic plan would not see them); SQLite has
# none here, so app.images.repository finds out in steps.

# What migration 0007 made of the words: an FTS5 table (SQLite), a stored tsvector
# column (PostgreSQL). Neither is in the models: they are the databases' own.
_FTS = table("images_fts", column("rowid", Integer()))
_VECTOR = literal_column("images.search_vector", TSVECTOR())


def _fts_match(words: Sequence[str]) -> ColumnElement[bool]:
    query = literal_column("images_fts").bool_op("MATCH")(fts5_query(words))
    return literal_column("images.rowid").in_(select(_FTS.c.rowid).where(query))


def _tsquery_match(words: Sequence[str]) -> ColumnElement[bool]:
    query = bindparam(None, tsquery(words), String(), literal_execute=True)
    return _VECTOR.bool_op("@@")(cast(query, TSQUERY))


def _tagged(owner_id: uuid.UUID, tag: str, inline: bool) -> ColumnElement[bool]:
    name = bindparam(None, tag, String(), literal_execute=inline)
    rows = select(ImageTag.image_id).where(ImageTag.owner_id == owner_id, ImageTag.name == name)
    return Image.id.in_(rows)


def _in_album(album_id: uuid.UUID) -> ColumnElement[bool]:
    return Image.id.in_(select(AlbumImage.image_id).where(AlbumImage.album_id == album_id))


def postgres_conditions(filters: Filters, owner_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """Every filter of `filters` for PostgreSQL; its planner picks the cheapest path."""
    conditions: list[ColumnElement[bool]] = []
    if filters.words:
        conditions.append(_tsquery_match(filters.words))
    conditions += [_tagged(owner_id, tag, inline=True) for tag in filters.tags]
    if filters.album_id is not None:
        conditions.append(_in_album(filters.album_id))
    return conditions


def sqlite_checks(
    words: Sequence[str] = (), tags: Sequence[str] = (), album_id: uuid.UUID | None = None
) -> list[ColumnElement[bool]]:
    """The check forms, row by row: "some word of the image starts with this word" is
    exactly what the FTS5 prefix query asks, since the words are separated by spaces."""
    checks: list[ColumnElement[bool]] = [
        func.instr(" " + Image.search_text, " " + word) > 0 for word in words
    ]
    checks += [
        exists().where(
            ImageTag.image_id == Image.id,
            ImageTag.source.in_((TagSource.USER, TagSource.AUTO)),  # the whole primary key
            ImageTag.name == tag,
        )
        for tag in tags
    ]
    if album_id is not None:
        checks.append(
            exists().where(AlbumImage.album_id == album_id, AlbumImage.image_id == Image.id)
        )
    return checks


def sqlite_lists(filters: Filters, owner_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """Every filter in its list form: SQLite builds each list once, then walks the owner's
    index in order and looks each entry up in them (rowid and id are in that index)."""
    lists = [_fts_match(filters.words)] if filters.words else []
    lists += [_tagged(owner_id, tag, inline=False) for tag in filters.tags]
    if filters.album_id is not None:
        lists.append(_in_album(filters.album_id))
    return lists


def sqlite_listed(filters: Filters, owner_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """`filters` with one of them in its list form, which drives the query (the album's
    at most 1,000 members, else the FTS5 matches, else the first tag's images), and the
    rest as checks."""
    if filters.album_id is not None:
        return [_in_album(filters.album_id), *sqlite_checks(filters.words, filters.tags)]
    if filters.words:
        return [_fts_match(filters.words), *sqlite_checks(tags=filters.tags)]
    first, *rest = filters.tags
    return [_tagged(owner_id, first, inline=False), *sqlite_checks(tags=rest)]


def sqlite_listed_count(filters: Filters, owner_id: uuid.UUID, cap: int) -> Select[int]:
    """How many images the list that drives `sqlite_listed` holds, counted up to `cap`
    (for words, every owner's: the FTS5 index knows no owners)."""
    rows: Select[Any]
    if filters.words:
        match = literal_column("images_fts").bool_op("MATCH")(fts5_query(filters.words))
        rows = select(_FTS.c.rowid).where(match)
    else:
        rows = select(ImageTag.image_id).where(
            ImageTag.owner_id == owner_id, ImageTag.name == filters.tags[0]
        )
    return select(func.count()).select_from(rows.limit(cap).subquery())
