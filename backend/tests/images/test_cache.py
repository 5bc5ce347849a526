"""The in-process metadata cache: hits, negative entries, single-flight, invalidation races."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.images.cache import CachedImage, InProcessCache
from tests.support.cache import cached_image

pytestmark = pytest.mark.anyio


class Database:
    """A stand-in for the table: counts loads, and can hold them until released."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, CachedImage] = {}
        self.loads = 0
        self.gate: asyncio.Event | None = None

    async def load(self, image_id: uuid.UUID) -> CachedImage | None:
        self.loads += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.rows.get(image_id)


async def test_second_read_is_a_hit() -> None:
    cache, db, image_id = InProcessCache(), Database(), uuid.uuid4()
    db.rows[image_id] = cached_image(image_id)
    assert (await cache.get_or_load(image_id, db.load))[1] == "MISS"
    value, result = await cache.get_or_load(image_id, db.load)
    assert result == "HIT"
    assert value == db.rows[image_id]
    assert db.loads == 1


async def test_misses_are_cached_briefly() -> None:
    cache, db, image_id = InProcessCache(negative_ttl=60), Database(), uuid.uuid4()
    assert await cache.get_or_load(image_id, db.load) == (None, "MISS")
    assert await cache.get_or_load(image_id, db.load) == (None, "HIT")
    assert db.loads == 1
    expired = InProcessCache(negative_ttl=0)
    await expired.get_or_load(image_id, db.load)
    await expired.get_or_load(image_id, db.load)
    assert db.loads == 3


async def test_concurrent_misses_cost_one_load() -> None:
    cache, db, image_id = InProcessCache(), Database(), uuid.uuid4()
    db.rows[image_id] = cached_image(image_id)
    db.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.get_or_load(image_id, db.load)) for _ in range(50)]
    await asyncio.sleep(0.01)
    db.gate.set()
    results = await asyncio.gather(*readers)
    assert db.loads == 1
    assert {value for value, _ in results} == {db.rows[image_id]}


async def test_invalidation_during_a_slow_miss_is_not_undone() -> None:
    """A delete that commits while a reader's query is in flight must stay deleted."""
    cache, db, image_id = InProcessCache(), Database(), uuid.uuid4()
    db.rows[image_id] = cached_image(image_id)
    db.gate = asyncio.Event()
    slow_reader = asyncio.create_task(cache.get_or_load(image_id, db.load))
    await asyncio.sleep(0.01)  # the reader has read the row...
    del db.rows[image_id]  # ...the delete commits...
    await cache.invalidate(image_id)  # ...and invalidates after its commit
    db.gate.set()
    await slow_reader
    db.gate = None
    assert await cache.get_or_load(image_id, db.load) == (None, "MISS")


async def test_a_cancelled_reader_does_not_break_the_others() -> None:
    cache, db, image_id = InProcessCache(), Database(), uuid.uuid4()
    db.rows[image_id] = cached_image(image_id)
    db.gate = asyncio.Event()
    first = asyncio.create_task(cache.get_or_load(image_id, db.load))
    second = asyncio.create_task(cache.get_or_load(image_id, db.load))
    await asyncio.sleep(0.01)
    first.cancel()
    db.gate.set()
    assert (await second)[0] == db.rows[image_id]
    assert db.loads == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache, image_id = InProcessCache(), uuid.uuid4()

    async def broken(_: uuid.UUID) -> CachedImage | None:
        await asyncio.sleep(0.01)
        raise ConnectionError("database down")

    waiters = [cache.get_or_load(image_id, broken) for _ in range(3)]
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    db = Database()
    assert await cache.get_or_load(image_id, db.load) == (None, "MISS")


async def test_size_is_bounded() -> None:
    cache, db = InProcessCache(max_entries=10), Database()
    for _ in range(100):
        await cache.get_or_load(uuid.uuid4(), db.load)
    assert len(cache._entries) == 10
