"""The Redis metadata cache against the machine's Redis: hits, misses, invalidation, races."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
import redis.asyncio

from app.images.cache import CachedImage
from app.images.redis_cache import RedisCache
from tests.support import images
from tests.support.cache import cached_image

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_kind() -> str:
    return "postgres"


@pytest.fixture
def settings_overrides(redis_url: str, queue_name: str) -> dict[str, object]:
    return {"redis_url": redis_url, "queue_name": queue_name, "redis_prefix": queue_name}


@pytest.fixture
async def cache(redis_url: str, queue_name: str) -> AsyncIterator[RedisCache]:
    opened = _redis_cache(redis_url, queue_name, ttl=60, negative_ttl=5)
    yield opened
    await _close(opened)


def _redis_cache(redis_url: str, prefix: str, **options: float) -> RedisCache:
    """A cache on a client of its own, as in a process of its own."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=0.25)
    return RedisCache(client, prefix, **options)


async def _close(cache: RedisCache) -> None:
    await cache.close()
    await cache.redis.aclose()


async def test_metadata_reads_miss_then_hit(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
    ).json()
    first = await client.get(f"/api/v1/images/{body['id']}")
    second = await client.get(f"/api/v1/images/{body['id']}")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.json() == second.json()
    assert second.json()["filename"] == "a.png"
    health = (await client.get("/health")).json()
    assert health["components"]["cache"]["status"] == "up"


async def test_cached_values_hold_public_fields_only(
    client: httpx.AsyncClient, redis_url: str, queue_name: str
) -> None:
    body = (
        await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
    ).json()
    await client.get(f"/api/v1/images/{body['id']}")
    async with redis.asyncio.Redis.from_url(redis_url) as connection:
        raw = await connection.get(f"{queue_name}:image:v2:{body['id']}")
    assert raw is not None
    text = raw.decode()
    assert body["delete_token"] not in text
    assert "delete_token" not in text
    assert "127.0.0.1" not in text
    assert "testserver" not in text  # URLs are built per request, never cached


async def test_delete_invalidates_at_once(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
    ).json()
    path = f"/api/v1/images/{body['id']}"
    assert (await client.get(path)).status_code == 200
    assert (await client.get(path)).headers["x-cache"] == "HIT"
    assert (await client.delete(body["delete_url"])).status_code == 204
    gone = await client.get(path)
    assert gone.status_code == 404
    assert gone.headers.get("x-cache") is None or gone.headers["x-cache"] != "HIT"
    assert (await client.get(body["url"])).status_code == 404


async def test_misses_are_cached_negatively(cache: RedisCache) -> None:
    calls = 0

    async def load(_: uuid.UUID) -> CachedImage | None:
        nonlocal calls
        calls += 1
        return None

    image_id = uuid.uuid4()
    assert await cache.get_or_load(image_id, load) == (None, "MISS")
    assert await cache.get_or_load(image_id, load) == (None, "HIT")
    assert calls == 1


async def test_concurrent_misses_cost_one_load(cache: RedisCache) -> None:
    calls = 0
    image_id = uuid.uuid4()

    async def load(_: uuid.UUID) -> CachedImage | None:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.1)
        return cached_image(image_id)

    results: list[tuple[CachedImage | None, str]] = []

    async def read() -> None:
        results.append(await cache.get_or_load(image_id, load))

    async with anyio.create_task_group() as group:
        for _ in range(25):
            group.start_soon(read)
    assert calls == 1
    assert {result for _, result in results} == {"MISS"}
    assert {image.filename for image, _ in results if image} == {"a.png"}


async def test_a_delete_racing_a_slow_miss_is_never_recached(
    cache: RedisCache, redis_url: str, queue_name: str
) -> None:
    image_id = uuid.uuid4()
    row_read = anyio.Event()
    release = anyio.Event()

    async def slow_load(_: uuid.UUID) -> CachedImage | None:
        row_read.set()  # it has read the row: from here on, what it holds is stale
        await release.wait()
        return cached_image(image_id)

    async with anyio.create_task_group() as group:
        stale: list[tuple[CachedImage | None, str]] = []

        async def reader() -> None:
            stale.append(await cache.get_or_load(image_id, slow_load))

        group.start_soon(reader)
        await row_read.wait()
        # Meanwhile the image is deleted (maybe by another process with its own cache).
        other = _redis_cache(redis_url, queue_name)
        await other.invalidate(image_id)
        await _close(other)
        release.set()

    assert stale[0][0] is not None  # that reader saw the row it read, as it was

    async def gone(_: uuid.UUID) -> CachedImage | None:
        return None

    assert await cache.get_or_load(image_id, gone) == (None, "MISS")


async def test_a_thumbnail_change_invalidates(cache: RedisCache) -> None:
    image_id = uuid.uuid4()

    async def pending(_: uuid.UUID) -> CachedImage | None:
        return cached_image(image_id)

    async def ready(_: uuid.UUID) -> CachedImage | None:
        return dataclasses.replace(cached_image(image_id), thumbnail_status="ready")

    await cache.get_or_load(image_id, pending)
    assert (await cache.get_or_load(image_id, ready))[0].thumbnail_status == "pending"  # type: ignore[union-attr]
    await cache.invalidate(image_id)
    value, result = await cache.get_or_load(image_id, ready)
    assert result == "MISS"
    assert value is not None
    assert value.thumbnail_status == "ready"


async def test_an_invalidation_reaches_the_near_cache_of_every_process(
    redis_url: str, queue_name: str
) -> None:
    image_id = uuid.uuid4()
    one, other = _redis_cache(redis_url, queue_name), _redis_cache(redis_url, queue_name)
    await one.start()
    await other.start()
    try:
        with anyio.fail_after(5):
            while not (one._subscribed and other._subscribed):  # noqa: ASYNC110 - polls a flag
                await anyio.sleep(0.01)
        calls = 0

        async def load(_: uuid.UUID) -> CachedImage | None:
            nonlocal calls
            calls += 1
            return cached_image(image_id, filename=f"v{calls}.png")

        assert (await one.get_or_load(image_id, load))[1] == "MISS"
        assert (await one.get_or_load(image_id, load))[1] == "HIT"  # from the near cache
        assert one.near.get(image_id)[0]

        await other.invalidate(image_id)  # e.g. a delete answered by another process
        with anyio.fail_after(2):
            while one.near.get(image_id)[0]:  # noqa: ASYNC110 - the message arrives by itself
                await anyio.sleep(0.005)
        value, result = await one.get_or_load(image_id, load)
        assert result == "MISS"
        assert value is not None
        assert value.filename == "v2.png"
    finally:
        await _close(one)
        await _close(other)
