"""Albums: a user's ordered collections of their own images (contract section 11).

`AlbumService`'s public methods; `caller`/`viewer` are the request's `Principal`,
`base_url` the request's (PUBLIC_BASE_URL wins when set):

- `create(caller, AlbumCreate, base_url) -> AlbumRead`
- `list_albums(caller, limit, cursor, base_url) -> AlbumList`: the caller's, newest first
- `get(album_id, viewer, base_url, cursor=None, limit=20) -> AlbumDetail`: the album and a
  page of its images in album order, as `viewer` may see them
- `update(album_id, caller, AlbumUpdate, base_url) -> AlbumRead`
- `delete(album_id, caller, with_images=False) -> None`
- `set_images(album_id, caller, image_ids, base_url) -> AlbumRead`: membership and order
- `add_images(album_id, caller, image_ids, base_url) -> AlbumRead`: appended
- `remove_image(album_id, caller, image_id) -> None`
- `download(album_id, viewer) -> AlbumDownload`: a streamed zip of the originals
- `is_owner(album_id, user_id) -> bool`: whether to show the owner's controls (web)

Who may do what: the owner everything; anyone (anonymous included) may read an
unlisted album, and sees only its unlisted, unexpired images (also in `image_count` and
the cover); a private album is `ALBUM_NOT_FOUND` to everyone else. Writes by others are
`ALBUM_NOT_FOUND` for a private album (its existence is not revealed) and `FORBIDDEN`
for an unlisted one. Member ids that are not the caller's own images (another user's,
an unknown or an expired id alike) are `FORBIDDEN`, which tells nothing about which.
Each change is one `Database.write` unit; the images whose `album_ids` it changed are
forgotten by the metadata cache after the commit.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from app.albums import repository
from app.albums.cursor import album_cursor, album_position, image_cursor, image_position
from app.albums.errors import AlbumNotFound
from app.albums.presenter import AlbumPresenter
from app.albums.repository import StoredAlbum, ZipMember
from app.albums.schemas import (
    MAX_MEMBERS,
    AlbumCreate,
    AlbumDetail,
    AlbumList,
    AlbumRead,
    AlbumUpdate,
)
from app.albums.zipstream import ZipEntry, zip_stream
from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.errors import Forbidden, ValidationFailed
from app.images.errors import ImageNotFound
from app.images.presenter import ImagePresenter
from app.images.service import ImageService
from app.infra.db import Database, RunAsync
from app.models import Visibility
from app.models.base import utcnow
from app.models.blob import object_key
from app.storage import Storage

DEFAULT_PAGE = 20
# Storage reads while zipping: a thread hop (local disk) per chunk is the main cost, and
# a 1 MiB chunk streamed 1.5x faster than 256 KiB; memory still holds about one chunk.
ZIP_CHUNK = 1024 * 1024
# A membership change: the album as it now is, and the images that joined or left it.
Changed = tuple[StoredAlbum, set[uuid.UUID]]


@dataclass(frozen=True, slots=True)
class AlbumDownload:
    """A zip of an album's images: its file name and its bytes, produced as sent."""

    filename: str
    chunks: AsyncIterator[bytes]


class AlbumService:
    """Albums over one database, the images service and the object storage."""

    def __init__(
        self,
        database: Database,
        storage: Storage,
        images: ImageService,
        image_presenter: ImagePresenter,
        presenter: AlbumPresenter,
    ) -> None:
        self.database = database  # album reads go to the primary: a change shows at once
        self.storage = storage
        self.images = images  # member records, deletes, and their cache
        self.image_presenter = image_presenter
        self.presenter = presenter

    # ---- read ---------------------------------------------------------------------------

    async def list_albums(
        self, caller: Principal, limit: int, cursor: str | None, base_url: str
    ) -> AlbumList:
        """A page of the caller's albums, newest first, and the cursor of the next."""
        owner = _signed_in(caller)
        before = album_position(cursor) if cursor else None
        now = utcnow()
        async with self.database.reader() as session:
            found = await repository.list_albums(session, owner, before, limit + 1)
            page = found[:limit]
            counts = await repository.image_counts(session, [a.id for a in page], True, now)
            covers = [a.cover_image_id for a in page if a.cover_image_id]
            shown = await repository.visible_images(session, covers, True, now)
        items = [
            self.presenter.read(a, counts.get(a.id, 0), a.cover_image_id in shown, base_url)
            for a in page
        ]
        next_cursor = None
        if len(found) > limit:
            next_cursor = album_cursor(page[-1].created_at, page[-1].id)
        return AlbumList(items=items, next_cursor=next_cursor)

    async def get(
        self,
        album_id: uuid.UUID,
        viewer: Principal,
        base_url: str,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> AlbumDetail:
        """The album and a page of its images (album order) as `viewer` may see them."""
        after = image_position(cursor) if cursor else None
        now = utcnow()
        async with self.database.reader() as session:
            album = _readable(await repository.get_album(session, album_id), viewer)
            as_owner = album.owner_id == viewer.user_id
            found = await repository.member_page(session, album_id, as_owner, now, after, limit + 1)
            read = await self._read(session, album, as_owner, base_url)
        page = found[:limit]
        records = await self.images.records([image_id for _, image_id in page])
        images = [
            self.image_presenter.read(record, base_url, viewer.user_id)
            for record in records
            if record.visible_to(viewer.user_id, now)
        ]
        next_cursor = image_cursor(page[-1][0]) if len(found) > limit else None
        return AlbumDetail(**read.model_dump(), images=images, next_cursor=next_cursor)

    async def download(self, album_id: uuid.UUID, viewer: Principal) -> AlbumDownload:
        """The album's images that `viewer` may see, as a zip streamed one file at a time:
        the originals as served, in album order, their names made distinct."""
        now = utcnow()
        async with self.database.reader() as session:
            album = _readable(await repository.get_album(session, album_id), viewer)
            as_owner = album.owner_id == viewer.user_id
            members = await repository.zip_members(session, album_id, as_owner, now)
        entries = [
            ZipEntry(name, m.file_size, m.created_at, self._opener(m))
            for name, m in zip(distinct_names([m.filename for m in members]), members, strict=True)
        ]
        return AlbumDownload(f"{_file_stem(album.title)}.zip", zip_stream(entries))

    def _opener(self, member: ZipMember) -> Callable[[], AsyncIterator[bytes]]:
        # The known size as the range's end: no read past it only to find the end.
        end = member.file_size - 1 if member.file_size else None
        return partial(self.storage.stream, object_key(member.sha256), 0, end, ZIP_CHUNK)

    async def is_owner(self, album_id: uuid.UUID, user_id: uuid.UUID | None) -> bool:
        """Whether `user_id` owns the album (the web page shows its owner the controls);
        False for anonymous callers and unknown albums."""
        if user_id is None:
            return False
        async with self.database.reader() as session:
            album = await repository.get_album(session, album_id)
        return album is not None and album.owner_id == user_id

    # ---- write --------------------------------------------------------------------------

    async def create(self, caller: Principal, album: AlbumCreate, base_url: str) -> AlbumRead:
        """A new, empty album of the caller's."""
        owner = _signed_in(caller)

        def insert(connection: Connection, _run_async: RunAsync) -> StoredAlbum:
            return repository.insert_album(
                connection, owner, album.title, album.description, album.visibility, utcnow()
            )

        return self.presenter.read(await self.database.write(insert), 0, False, base_url)

    async def update(
        self, album_id: uuid.UUID, caller: Principal, changes: AlbumUpdate, base_url: str
    ) -> AlbumRead:
        """Change the title, description, visibility or cover (an image of the album)."""
        owner = _signed_in(caller)
        values = changes.changes()

        def change(connection: Connection, _run_async: RunAsync) -> StoredAlbum:
            album = _editable(repository.lock_album(connection, album_id), owner)
            if not values:
                return album  # nothing asked, nothing changed: updated_at stays
            cover = values.get("cover_image_id")
            if cover is not None and not repository.is_member(connection, album_id, cover):
                raise _invalid("cover_image_id", "The cover must be an image of the album")
            return _changed(repository.update_album(connection, album_id, owner, values, utcnow()))

        return await self._owner_view(await self.database.write(change), base_url)

    async def delete(
        self, album_id: uuid.UUID, caller: Principal, with_images: bool = False
    ) -> None:
        """Delete the album; its images stay unless `with_images`, which deletes each as
        `DELETE /images/{id}` does."""
        owner = _signed_in(caller)

        def remove(connection: Connection, _run_async: RunAsync) -> list[uuid.UUID]:
            _editable(repository.lock_album(connection, album_id), owner)
            members = repository.member_ids(connection, album_id)
            if not repository.delete_album(connection, album_id, owner):
                raise AlbumNotFound()
            return members

        members = await self.database.write(remove)
        await self.images.forget(members, owner)  # their album_ids changed
        if with_images:
            for image_id in members:
                try:
                    await self.images.delete(image_id, caller, None)
                except ImageNotFound:
                    continue  # deleted or expired meanwhile: gone all the same

    async def set_images(
        self,
        album_id: uuid.UUID,
        caller: Principal,
        image_ids: Sequence[uuid.UUID],
        base_url: str,
    ) -> AlbumRead:
        """Make `image_ids` the album's images, in this order (a repeated id counts once,
        at its first position)."""
        owner = _signed_in(caller)
        wanted = _distinct(image_ids)

        def replace(connection: Connection, _run_async: RunAsync) -> Changed:
            _editable(repository.lock_album(connection, album_id), owner)
            now = utcnow()
            _require_owned(connection, owner, wanted, now)
            before = repository.replace_members(connection, album_id, owner, wanted, now)
            album = _changed(repository.members_changed(connection, album_id, owner, now))
            return album, set(before) ^ set(wanted)

        album, moved = await self.database.write(replace)
        await self.images.forget(moved, owner)
        return await self._owner_view(album, base_url)

    async def add_images(
        self,
        album_id: uuid.UUID,
        caller: Principal,
        image_ids: Sequence[uuid.UUID],
        base_url: str,
    ) -> AlbumRead:
        """Append `image_ids` to the album, skipping those already in it."""
        owner = _signed_in(caller)
        wanted = _distinct(image_ids)

        def append(connection: Connection, _run_async: RunAsync) -> Changed:
            album = _editable(repository.lock_album(connection, album_id), owner)
            now = utcnow()
            _require_owned(connection, owner, wanted, now)
            members = set(repository.member_ids(connection, album_id))
            new = [image_id for image_id in wanted if image_id not in members]
            if len(members) + len(new) > MAX_MEMBERS:
                raise _invalid("image_ids", f"An album holds at most {MAX_MEMBERS} images")
            if not new:
                return album, set()
            repository.append_members(connection, album_id, owner, new, now)
            return _changed(repository.members_changed(connection, album_id, owner, now)), set(new)

        album, added = await self.database.write(append)
        await self.images.forget(added, owner)
        return await self._owner_view(album, base_url)

    async def remove_image(
        self, album_id: uuid.UUID, caller: Principal, image_id: uuid.UUID
    ) -> None:
        """Take one image out of the album (the image stays); IMAGE_NOT_FOUND when it is
        not in it."""
        owner = _signed_in(caller)

        def remove(connection: Connection, _run_async: RunAsync) -> None:
            _editable(repository.lock_album(connection, album_id), owner)
            if not repository.remove_member(connection, album_id, owner, image_id):
                raise ImageNotFound()
            _changed(repository.members_changed(connection, album_id, owner, utcnow()))

        await self.database.write(remove)
        await self.images.forget([image_id], owner)

    # ---- helpers ------------------------------------------------------------------------

    async def _owner_view(self, album: StoredAlbum, base_url: str) -> AlbumRead:
        async with self.database.reader() as session:
            return await self._read(session, album, True, base_url)

    async def _read(
        self, session: AsyncSession, album: StoredAlbum, as_owner: bool, base_url: str
    ) -> AlbumRead:
        now = utcnow()
        counts = await repository.image_counts(session, [album.id], as_owner, now)
        cover = [album.cover_image_id] if album.cover_image_id else []
        shown = await repository.visible_images(session, cover, as_owner, now)
        return self.presenter.read(album, counts.get(album.id, 0), bool(shown), base_url)


def _signed_in(caller: Principal) -> uuid.UUID:
    if caller.user_id is None:
        raise Unauthorized()
    return caller.user_id


def _readable(album: StoredAlbum | None, viewer: Principal) -> StoredAlbum:
    """The album if `viewer` may read it: theirs, or unlisted."""
    if album is None:
        raise AlbumNotFound()
    if album.visibility == Visibility.PRIVATE and album.owner_id != viewer.user_id:
        raise AlbumNotFound()
    return album


def _editable(album: StoredAlbum | None, owner: uuid.UUID) -> StoredAlbum:
    """The album if `owner` owns it; others learn only what they may read of it."""
    if album is None:
        raise AlbumNotFound()
    if album.owner_id != owner:
        if album.visibility == Visibility.PRIVATE:
            raise AlbumNotFound()
        raise Forbidden("Only the album's owner may change it")
    return album


def _changed(album: StoredAlbum | None) -> StoredAlbum:
    if album is None:  # the owner's checked album, locked: cannot happen
        raise AlbumNotFound()
    return album


def _require_owned(
    connection: Connection, owner: uuid.UUID, image_ids: list[uuid.UUID], now: datetime
) -> None:
    owned = repository.owned_images(connection, owner, image_ids, now)
    if len(owned) != len(image_ids):
        raise Forbidden("An album can only hold your own images")


def _distinct(image_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(image_ids))


def _invalid(field: str, message: str) -> ValidationFailed:
    problem = {"loc": ["body", field], "msg": message, "type": "value_error"}
    return ValidationFailed(message, details={"errors": [problem]})


def distinct_names(names: Sequence[str]) -> list[str]:
    """`names` made distinct, case-insensitively, as "a.jpg", "a (2).jpg", "a (3).jpg"."""
    taken: set[str] = set()
    result: list[str] = []
    for name in names:
        stem, dot, extension = name.rpartition(".")
        if not dot or not stem:
            stem, dot, extension = name, "", ""
        candidate, number = name, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem} ({number}){dot}{extension}"
        taken.add(candidate.casefold())
        result.append(candidate)
    return result


def _file_stem(title: str) -> str:
    """The album title as a file name: no path separators or control characters."""
    stem = "".join(
        "_" if ch in '/\\:*?"<>|' or unicodedata.category(ch).startswith("C") else ch
        for ch in title
    )
    return " ".join(stem.split()).strip(" .")[:150] or "album"
