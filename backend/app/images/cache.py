"""Cache-aside for image metadata: the public fields only, keyed by image id.

Without Redis the cache lives in this process, which is only correct while this is the
only process answering for the database; `app.wiring.build_metadata_cache` disables it
otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from app.infra.probe import DISABLED, Probe
from app.models import Image, Thumbnail

CacheResult = Literal["HIT", "MISS", "BYPASS"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CachedThumbnail:
    size: str
    sha256: str
    file_size: int


@dataclass(frozen=True, slots=True)
class CachedImage:
    """The public, URL-independent fields of an image (never tokens or addresses)."""

    id: uuid.UUID
    filename: str
    content_type: str
    file_size: int
    width: int
    height: int
    frames: int
    sha256: str
    created_at: datetime
    thumbnail_status: str
    thumbnails: tuple[CachedThumbnail, ...] = ()
    # The library (contract section 10). `owner_id` decides who may see a private image
    # and its `album_ids`; it is never rendered.
    owner_id: uuid.UUID | None = None
    visibility: str = "unlisted"
    expires_at: datetime | None = None
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()  # every tag, sorted
    tags_auto: tuple[str, ...] = ()  # those the tagger made
    tags_status: str = "pending"
    album_ids: tuple[uuid.UUID, ...] = ()  # the owner's albums holding it
    placeholder: str | None = None

    def visible_to(self, viewer: uuid.UUID | None, now: datetime) -> bool:
        """Whether `viewer` (None: anonymous) may see it at `now`: not expired, and
        unlisted or theirs."""
        if self.expires_at is not None and self.expires_at <= now:
            return False
        return self.visibility != "private" or (viewer is not None and viewer == self.owner_id)


# Columns of `images` that the record carries under the same names.
RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "filename",
    "content_type",
    "file_size",
    "width",
    "height",
    "frames",
    "created_at",
    "thumbnail_status",
    "owner_id",
    "visibility",
    "expires_at",
    "title",
    "description",
    "tags_status",
)


def tags_of(tags_json: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every tag, sorted; the automatic ones, sorted) from `images.tags_json`."""
    tags: dict[str, list[str]] = json.loads(tags_json or "{}")
    auto = tuple(sorted(set(tags.get("auto", ()))))
    return tuple(sorted(set(tags.get("user", ())) | set(auto))), auto


def tags_json_of(user: Sequence[str], auto: Sequence[str]) -> str:
    """`images.tags_json` for these tags."""
    return json.dumps({"user": sorted(set(user)), "auto": sorted(set(auto))})


def record_of(
    image: Image, thumbnails: list[Thumbnail], album_ids: Sequence[uuid.UUID] = ()
) -> CachedImage:
    """The one record of a stored image that the rest of the domain sees."""
    tags, tags_auto = tags_of(image.tags_json)
    return CachedImage(
        **{name: getattr(image, name) for name in RECORD_COLUMNS},
        sha256=image.blob_sha256,
        thumbnails=tuple(CachedThumbnail(t.size, t.sha256, t.file_size) for t in thumbnails),
        tags=tags,
        tags_auto=tags_auto,
        album_ids=tuple(album_ids),
        placeholder=next((t.placeholder for t in thumbnails if t.placeholder), None),
    )


Loader = Callable[[uuid.UUID], Awaitable[CachedImage | None]]


class SingleFlight(Generic[T]):
    """At most one load per image id at a time; concurrent callers share its result.

    The load runs as its own task, so a caller that goes away cannot cancel it for the
    others waiting on the same id."""

    def __init__(self) -> None:
        self._loading: dict[uuid.UUID, asyncio.Task[T]] = {}

    async def run(self, image_id: uuid.UUID, load: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = self._loading.get(image_id)
        if task is None:
            task = asyncio.create_task(load())
            self._loading[image_id] = task
            task.add_done_callback(lambda done: self._finished(image_id, done))
        return await asyncio.shield(task)

    def _finished(self, image_id: uuid.UUID, task: asyncio.Task[T]) -> None:
        self._loading.pop(image_id, None)
        if not task.cancelled():
            task.exception()  # mark it retrieved: the waiters re-raise it, if any remain


class MetadataCache(Protocol):
    async def get_or_load(
        self, image_id: uuid.UUID, load: Loader
    ) -> tuple[CachedImage | None, CacheResult]:
        """The cached value, or `load`'s (stored for the next reader) and how it was found."""
        ...

    async def invalidate(self, image_id: uuid.UUID) -> None:
        """Forget `image_id`; call after the commit that changed or deleted it."""
        ...

    async def start(self) -> None: ...

    async def status(self) -> Probe:
        """For /health: a cache in this process has nothing to reach ("disabled")."""
        ...

    async def close(self) -> None: ...


class NoCache:
    """Every read goes to the database."""

    async def get_or_load(
        self, image_id: uuid.UUID, load: Loader
    ) -> tuple[CachedImage | None, CacheResult]:
        return await load(image_id), "BYPASS"

    async def invalidate(self, image_id: uuid.UUID) -> None:
        return None

    async def start(self) -> None:
        return None

    async def status(self) -> Probe:
        return DISABLED

    async def close(self) -> None:
        return None


# A process-wide cache: docs/adr/0018-unit-of-work.md lists them all, and why.
class LocalEntries:
    """Bounded TTL entries in this process, plus when each id was last dropped.

    `put` refuses a value whose load began before the latest drop of its id: a delete
    that races a slow miss cannot resurrect the image. Shared by the in-process cache
    and the Redis cache's near cache."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[uuid.UUID, tuple[float, CachedImage | None]] = OrderedDict()
        self._dropped_at: dict[uuid.UUID, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, image_id: uuid.UUID) -> tuple[bool, CachedImage | None]:
        entry = self._entries.get(image_id)
        if entry is None or entry[0] <= time.monotonic():
            return False, None
        return True, entry[1]

    def put(
        self, image_id: uuid.UUID, value: CachedImage | None, ttl: float, loaded_since: float
    ) -> None:
        if self._dropped_at.get(image_id, -1.0) >= loaded_since:
            return  # invalidated while it was being read: stale
        self._entries[image_id] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(image_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, image_id: uuid.UUID) -> None:
        self._entries.pop(image_id, None)
        now = time.monotonic()
        self._dropped_at[image_id] = now
        if len(self._dropped_at) > self.max_entries:
            # Loads never outlive a minute (database timeouts are shorter), so older marks
            # cannot matter any more.
            horizon = now - 60.0
            self._dropped_at = {k: t for k, t in self._dropped_at.items() if t > horizon}

    def clear(self) -> None:
        self._entries.clear()


class InProcessCache:
    """A bounded TTL cache with negative entries and single-flight loads."""

    def __init__(
        self, *, max_entries: int = 10_000, ttl: float = 300.0, negative_ttl: float = 5.0
    ) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._entries = LocalEntries(max_entries)
        self._flight: SingleFlight[CachedImage | None] = SingleFlight()

    async def get_or_load(
        self, image_id: uuid.UUID, load: Loader
    ) -> tuple[CachedImage | None, CacheResult]:
        found, value = self._entries.get(image_id)
        if found:
            return value, "HIT"
        started = time.monotonic()
        value = await self._flight.run(image_id, lambda: self._load(image_id, load, started))
        return value, "MISS"

    async def _load(self, image_id: uuid.UUID, load: Loader, started: float) -> CachedImage | None:
        value = await load(image_id)
        ttl = self.ttl if value is not None else self.negative_ttl
        self._entries.put(image_id, value, ttl, started)
        return value

    async def invalidate(self, image_id: uuid.UUID) -> None:
        self._entries.drop(image_id)

    async def start(self) -> None:
        return None

    async def status(self) -> Probe:
        return DISABLED

    async def close(self) -> None:
        self._entries.clear()
