"""Cache-aside for image metadata in Redis, shared by every API process and worker.

- Keys are versioned (`<prefix>:image:v1:<id>`): a change of the cached fields ships as
  v2 and never reads v1 values. Values are the public fields only, as JSON.
- Misses are single-flight per process, and cached negatively for a few seconds.
- A delete (or any change) deletes the key and bumps a per-image invalidation counter.
  A load stores its result only if that counter still has the value it read before
  loading (a compare-and-set in Lua), so a delete that races a slow miss can never be
  overwritten by the stale row the miss read.
- Every call has a short timeout. When Redis fails, reads bypass it (`X-Cache: BYPASS`)
  for `RETRY_REDIS_AFTER` seconds and go to the database; an invalidation that could not
  be delivered is retried in the background until Redis answers, and the TTL bounds
  what a reader could see meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.images.cache import CachedImage, CachedThumbnail, CacheResult, Loader, SingleFlight

log = logging.getLogger(__name__)
REDIS_TIMEOUT = 0.25
RETRY_REDIS_AFTER = 5.0
VERSION = "v1"

CACHE_REQUESTS = Counter("chitram_cache_requests", "Metadata cache lookups", ["result"])
CACHE_DOWN = Gauge("chitram_cache_down", "1 while the Redis metadata cache is bypassed")

# KEYS: value key, invalidation counter. ARGV: counter value read before loading, value,
# TTL in seconds. Stores only when no invalidation happened since the read.
_STORE_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_MISSING = "null"


def encode(image: CachedImage | None) -> str:
    if image is None:
        return _MISSING
    fields = asdict(image)
    fields["id"] = str(image.id)
    fields["created_at"] = image.created_at.isoformat()
    return json.dumps(fields, separators=(",", ":"))


def decode(raw: bytes | str) -> CachedImage | None:
    fields: dict[str, Any] | None = json.loads(raw)
    if fields is None:
        return None
    fields["id"] = uuid.UUID(fields["id"])
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    fields["thumbnails"] = tuple(CachedThumbnail(**t) for t in fields["thumbnails"])
    return CachedImage(**fields)


class RedisCache:
    def __init__(
        self, url: str, prefix: str, *, ttl: float = 300.0, negative_ttl: float = 5.0
    ) -> None:
        self.redis = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self.prefix = f"{prefix}:image:{VERSION}"
        self.ttl = max(1, round(ttl))
        self.negative_ttl = max(1, round(negative_ttl))
        self._store = self.redis.register_script(_STORE_IF_UNCHANGED)
        self._flight = SingleFlight()
        self._retry_at = 0.0
        self._undelivered: set[uuid.UUID] = set()
        self._redeliver: asyncio.Task[None] | None = None

    def _keys(self, image_id: uuid.UUID) -> tuple[str, str]:
        return f"{self.prefix}:{image_id}", f"{self.prefix}:{image_id}:gen"

    @property
    def down(self) -> bool:
        return self._retry_at > time.monotonic()

    def _trip(self, exc: BaseException) -> None:
        if not self.down:
            log.warning("metadata cache bypassed: Redis failed", extra={"error": repr(exc)})
        self._retry_at = time.monotonic() + RETRY_REDIS_AFTER
        CACHE_DOWN.set(1)

    async def get_or_load(
        self, image_id: uuid.UUID, load: Loader
    ) -> tuple[CachedImage | None, CacheResult]:
        if self.down or self._undelivered:
            CACHE_REQUESTS.labels(result="bypass").inc()
            return await load(image_id), "BYPASS"
        key, generation_key = self._keys(image_id)
        try:
            raw, generation = await asyncio.wait_for(
                self.redis.mget(key, generation_key), REDIS_TIMEOUT
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)
            CACHE_REQUESTS.labels(result="bypass").inc()
            return await load(image_id), "BYPASS"
        CACHE_DOWN.set(0)
        if raw is not None:
            CACHE_REQUESTS.labels(result="hit").inc()
            return decode(raw), "HIT"
        CACHE_REQUESTS.labels(result="miss").inc()
        seen = (generation or b"").decode()
        value = await self._flight.run(image_id, lambda: self._load(image_id, load, seen))
        return value, "MISS"

    async def _load(self, image_id: uuid.UUID, load: Loader, seen: str) -> CachedImage | None:
        value = await load(image_id)
        ttl = self.ttl if value is not None else self.negative_ttl
        try:
            await asyncio.wait_for(
                self._store(keys=list(self._keys(image_id)), args=[seen, encode(value), ttl]),
                REDIS_TIMEOUT,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)
        return value

    async def invalidate(self, image_id: uuid.UUID) -> None:
        if not await self._deliver(image_id):
            # Until it is delivered, this process reads past the cache, and keeps trying.
            self._undelivered.add(image_id)
            if self._redeliver is None or self._redeliver.done():
                self._redeliver = asyncio.create_task(self._redeliver_all())

    async def _deliver(self, image_id: uuid.UUID) -> bool:
        key, generation_key = self._keys(image_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.incr(generation_key)
                pipe.expire(generation_key, self.ttl * 2)
                await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)
            return False
        return True

    async def _redeliver_all(self) -> None:
        while self._undelivered:
            await asyncio.sleep(1.0)
            for image_id in list(self._undelivered):
                if await self._deliver(image_id):
                    self._undelivered.discard(image_id)
                else:
                    break

    async def ping(self) -> float:
        started = time.perf_counter()
        await asyncio.wait_for(self.redis.ping(), REDIS_TIMEOUT)
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        if self._redeliver is not None:
            self._redeliver.cancel()
        await self.redis.aclose()
