"""The caller's library (contract sections 10 and 11): list and search their images, edit
one (`PATCH`), count their tags. Each change is one `Database.write` unit (ADR 0018)."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from functools import partial

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.errors import Forbidden, ValidationFailed
from app.images import repository
from app.images.cache import CachedImage, MetadataCache
from app.images.cursor import Position, decode_cursor, encode_cursor
from app.images.errors import AlbumNotFound, ImageNotFound
from app.images.presenter import ImagePresenter
from app.images.schemas import ImageList, ImageRead, ImageUpdate, TagCount, TagList
from app.images.search import MAX_QUERY_CHARS, Filters, ImageQuery, query_words
from app.images.tags import InvalidTag, normalise_tag, tags_or_422
from app.infra.db import Database, RunAsync
from app.infra.replicas import Reads
from app.models import Visibility
from app.models.base import utcnow

EVERYTHING = ImageQuery()
MAX_FILTER_TAGS = 20  # a page of images matching more tags than this is empty anyway
MAX_TAGS_LISTED = 1000


def _owner(caller: Principal) -> uuid.UUID:
    if caller.user_id is None:
        raise Unauthorized()
    return caller.user_id


def filters_of(query: ImageQuery) -> Filters:
    """The query made ready for SQL; 422 VALIDATION_ERROR for a bad `q` or `tag`."""
    if query.q is not None and len(query.q) > MAX_QUERY_CHARS:
        message = f"At most {MAX_QUERY_CHARS} characters"
        error = {"loc": ["query", "q"], "msg": message, "type": "string_too_long"}
        raise ValidationFailed(details={"errors": [error]})
    tags = tags_or_422(query.tags, ("query", "tag"), limit=MAX_FILTER_TAGS)
    return Filters(query_words(query.q), tuple(tags), query.album_id, query.sort)


class LibraryService:
    """Listing, search and edits of one caller's images, over one database."""

    def __init__(
        self, database: Database, reads: Reads, cache: MetadataCache, presenter: ImagePresenter
    ) -> None:
        self.database = database  # writes
        self.reads = reads  # listings: a replica when one has seen the caller's writes
        self.cache = cache
        self.presenter = presenter

    async def list_images(
        self,
        caller: Principal,
        limit: int,
        cursor: str | None,
        base_url: str,
        query: ImageQuery = EVERYTHING,
    ) -> ImageList:
        """A page of the caller's images matching `query`, in its order, and the cursor
        of the next page. 404 ALBUM_NOT_FOUND for an album that is not the caller's."""
        owner = _owner(caller)
        filters = filters_of(query)
        before = decode_cursor(cursor, query.sort) if cursor else None
        found = await self.reads.read(
            partial(self._page, owner=owner, filters=filters, before=before, limit=limit + 1),
            user_id=owner,
        )
        if found is None:
            raise AlbumNotFound()
        page = found[:limit]
        items = [self.presenter.read(image, base_url, owner) for image in page]
        next_cursor = encode_cursor(page[-1], query.sort) if len(found) > limit else None
        return ImageList(items=items, next_cursor=next_cursor)

    @staticmethod
    async def _page(
        session: AsyncSession,
        owner: uuid.UUID,
        filters: Filters,
        before: Position | None,
        limit: int,
    ) -> list[CachedImage] | None:
        # The album check and the page in one session: the same database answers both.
        if filters.album_id is not None and not await repository.owns_album(
            session, filters.album_id, owner
        ):
            return None
        return await repository.list_images(session, owner, before, limit, filters, utcnow())

    async def tags(self, caller: Principal, prefix: str = "", limit: int = 100) -> TagList:
        """The caller's tags on images that have not expired, most used first, then by
        name; only those starting with `prefix` (normalised as a tag) when given."""
        owner = _owner(caller)
        start = _tag_prefix(prefix)
        limit = max(1, min(limit, MAX_TAGS_LISTED))
        counts = await self.reads.read(
            partial(repository.tag_counts, owner_id=owner, prefix=start, limit=limit, now=utcnow()),
            user_id=owner,
        )
        return TagList(items=[TagCount(name=name, count=count) for name, count in counts])

    async def update(
        self, image_id: uuid.UUID, caller: Principal, changes: ImageUpdate, base_url: str
    ) -> ImageRead:
        """Apply `changes` (the fields sent) to the caller's image; it as its owner sees
        it. Others' private images are 404, their other images (and anonymous ones) 403."""
        owner = _owner(caller)
        sent = changes.model_fields_set
        values = {name: getattr(changes, name) for name in sent & repository.EDITABLE}
        tags = (changes.tags or []) if "tags" in sent else None

        def edit(connection: Connection, _run_async: RunAsync) -> None:
            row = repository.lock_image(connection, image_id)
            if row is None:
                raise ImageNotFound()
            _authorise(owner, row.owner_id, row.visibility, row.expires_at)
            repository.update_image(connection, image_id, owner, values, tags)

        await self.database.write(edit)
        # The marker before the invalidation: see app.infra.replicas.
        await self.reads.wrote(image_id=image_id, user_id=owner)
        await self.cache.invalidate(image_id)
        image = await self.reads.read(
            partial(repository.get_image, image_id=image_id),
            image_id=image_id,
            confirm_missing=True,
        )
        if image is None:  # deleted since
            raise ImageNotFound()
        return self.presenter.read(image, base_url, owner)


def _authorise(
    caller: uuid.UUID, owner: uuid.UUID | None, visibility: str, expires_at: datetime | None
) -> None:
    if expires_at is not None and expires_at <= utcnow():
        raise ImageNotFound()  # gone for everyone; the sweeper deletes it
    if owner == caller:
        return
    if owner is not None and visibility == Visibility.PRIVATE:
        raise ImageNotFound()  # its existence is not revealed
    raise Forbidden("Only the image's owner may change it")


def _tag_prefix(prefix: str) -> str:
    """`prefix` spelt as tags are; "" for none. A prefix may end where a space follows."""
    if not prefix.strip():
        return ""
    trailing = " " if unicodedata.normalize("NFKC", prefix)[-1].isspace() else ""
    try:
        start = normalise_tag(prefix)
    except InvalidTag as exc:
        error = {"loc": ["query", "prefix"], "msg": str(exc), "type": "value_error"}
        raise ValidationFailed(details={"errors": [error]}) from exc
    return (start + trailing)[:50]
