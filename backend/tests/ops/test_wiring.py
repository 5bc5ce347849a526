"""The composition root: one Redis connection pool per process, whoever uses Redis."""

from __future__ import annotations

import uuid

import pytest

from app import wiring
from app.config import Settings
from app.images.redis_cache import RedisCache
from app.infra.replicas import ReadRouter
from app.jobs.queue import ArqQueue
from app.jobs.worker import build_worker

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_kind() -> str:
    return "postgres"  # read replicas need it


@pytest.fixture
def settings_overrides(redis_url: str, queue_name: str, postgres_url: str) -> dict[str, object]:
    return {
        "redis_url": redis_url,
        "queue_name": queue_name,
        "redis_prefix": queue_name,
        # The primary as its own "replica": never usable, but the router is built.
        "database_read_urls": (postgres_url,),
    }


async def test_the_api_s_redis_users_share_one_connection_pool(settings: Settings) -> None:
    resources = await wiring.open_resources(settings)
    try:
        assert resources.redis is not None
        pool = resources.redis.connection_pool
        assert isinstance(resources.cache, RedisCache)
        assert isinstance(resources.reads, ReadRouter)
        assert isinstance(resources.queue, ArqQueue)
        users = {
            "cache": resources.cache.redis.connection_pool,
            "replica router": resources.reads.redis.connection_pool,
            "queue": resources.queue.redis.connection_pool,
            "rate limiter": resources.limiter.pool,
        }
        assert {name: found is pool for name, found in users.items()} == dict.fromkeys(users, True)
        # Each of them works through it.
        assert (await resources.limiter.hit("read", "ip:192.0.2.1")).allowed
        assert await resources.queue.depth() == 0
        assert (await resources.cache.status())[0] == "up"
        await resources.reads.wrote(image_id=uuid.uuid4())
        assert resources.images.cache is resources.cache
    finally:
        await wiring.close_resources(resources)


async def test_the_worker_s_redis_users_share_one_connection_pool(settings: Settings) -> None:
    resources = await wiring.open_job_resources(settings, redis_timeout=wiring.WORKER_REDIS_TIMEOUT)
    try:
        assert resources.redis is not None
        pool = resources.redis.connection_pool
        assert isinstance(resources.cache, RedisCache)
        assert isinstance(resources.reads, ReadRouter)
        worker = build_worker(settings, resources.jobs, resources.redis, burst=True)
        assert worker.pool.connection_pool is pool
        assert resources.cache.redis.connection_pool is pool
        assert resources.reads.redis.connection_pool is pool
        await worker.async_run()  # an empty queue: it stops at once
        await worker.close()
        await resources.cache.invalidate(uuid.uuid4())  # the pool connects again
    finally:
        await wiring.close_resources(resources)


async def test_without_redis_nothing_connects_to_it(settings: Settings) -> None:
    resources = await wiring.open_resources(
        settings.model_copy(update={"redis_url": None, "database_read_urls": ()})
    )
    try:
        assert resources.redis is None
        assert resources.limiter.pool is None
    finally:
        await wiring.close_resources(resources)
