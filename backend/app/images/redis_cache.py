"""Cache-aside for image metadata in Redis, shared by every API process and worker.

- Keys are versioned (`<prefix>:image:v2:<id>`): a change of the cached fields ships as
  v2 and never reads v1 values. Values are the public fields only, as JSON.
- Fetches (and so misses) are single-flight per process and id; misses are cached
  negatively for a few seconds.
- A delete (or any change) deletes the key and bumps a per-image invalidation counter.
  A load stores its result only if that counter still has the value it read before
  loading (a compare-and-set in Lua), so a delete that races a slow miss can never be
  overwritten by the stale row the miss read.
- A small near cache in the process answers repeated reads without a round trip. It is
  used only while this process is subscribed to the invalidation channel, where every
  invalidation is also published: an entry leaves every process's near cache as soon
  as the message arrives (the deleting process drops its own before answering), and a
  load that started before an invalidation it heard of is not kept.
- Every call has a short timeout. When Redis fails, reads bypass it (`X-Cache: BYPASS`)
  for `app.infra.breaker.RETRY_AFTER` seconds and go to the database; an invalidation that could not
  be delivered is retried in the background until Redis answers, and the TTL bounds
  what a reader could see meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.images.cache import (
    CachedImage,
    CachedThumbnail,
    CacheResult,
    Loader,
    LocalEntries,
    SingleFlight,
)
from app.infra.breaker import Breaker
from app.infra.metrics import CACHE_DOWN
from app.infra.probe import Probe, probe

log = logging.getLogger(__name__)
REDIS_TIMEOUT = 0.25
VERSION = "v2"  # v2: the library fields (visibility, expiry, tags, albums)

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
    fields["owner_id"] = str(image.owner_id) if image.owner_id else None
    fields["expires_at"] = image.expires_at.isoformat() if image.expires_at else None
    fields["album_ids"] = [str(album_id) for album_id in image.album_ids]
    return json.dumps(fields, separators=(",", ":"))


def decode(raw: bytes | str) -> CachedImage | None:
    fields: dict[str, Any] | None = json.loads(raw)
    if fields is None:
        return None
    fields["id"] = uuid.UUID(fields["id"])
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    fields["thumbnails"] = tuple(CachedThumbnail(**t) for t in fields["thumbnails"])
    fields["owner_id"] = uuid.UUID(fields["owner_id"]) if fields["owner_id"] else None
    expires_at = fields["expires_at"]
    fields["expires_at"] = datetime.fromisoformat(expires_at) if expires_at else None
    fields["album_ids"] = tuple(uuid.UUID(album_id) for album_id in fields["album_ids"])
    fields["tags"] = tuple(fields["tags"])
    fields["tags_auto"] = tuple(fields["tags_auto"])
    return CachedImage(**fields)


class RedisCache:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ttl: float = 300.0,
        negative_ttl: float = 5.0,
        near_ttl: float = 10.0,
    ) -> None:
        self.redis = redis  # the process's client: its owner closes it
        self.prefix = f"{prefix}:image:{VERSION}"
        self.ttl = max(1, round(ttl))
        self.negative_ttl = max(1, round(negative_ttl))
        self._store = self.redis.register_script(_STORE_IF_UNCHANGED)
        self._fetches: SingleFlight[tuple[CachedImage | None, CacheResult]] = SingleFlight()
        self._breaker = Breaker("metadata cache bypassed: Redis failed", CACHE_DOWN)
        self._undelivered: set[uuid.UUID] = set()
        self._redeliver: asyncio.Task[None] | None = None
        self.channel = f"{self.prefix}:invalidations"
        self.near_ttl = near_ttl
        self.near = LocalEntries()  # a process-wide cache: ADR 0018 lists them all
        self._subscribed = False  # the near cache is trusted only while this is true
        self._subscribed_since = 0.0
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        """Follow the invalidation channel; reconnect after failures, near cache off
        (and emptied) while not subscribed."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed_since = time.monotonic()
                self._subscribed = True
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self.near.drop(uuid.UUID(message["data"].decode()))
            except (RedisError, OSError, TimeoutError, ValueError) as exc:
                log.debug("invalidation channel lost", extra={"error": repr(exc)})
            finally:
                self._subscribed = False
                self.near.clear()
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(1.0)

    def _keys(self, image_id: uuid.UUID) -> tuple[str, str]:
        return f"{self.prefix}:{image_id}", f"{self.prefix}:{image_id}:gen"

    async def get_or_load(
        self, image_id: uuid.UUID, load: Loader
    ) -> tuple[CachedImage | None, CacheResult]:
        if self._breaker.open or self._undelivered:
            return await load(image_id), "BYPASS"
        if self._subscribed:
            found, near = self.near.get(image_id)
            if found:
                return near, "HIT"
        # One round trip per id and process at a time: when a near entry expires under
        # load, the readers of that id share a single fetch instead of queueing dozens.
        return await self._fetches.run(image_id, lambda: self._fetch(image_id, load))

    async def _fetch(
        self, image_id: uuid.UUID, load: Loader
    ) -> tuple[CachedImage | None, CacheResult]:
        started = time.monotonic()
        key, generation_key = self._keys(image_id)
        try:
            raw, generation = await asyncio.wait_for(
                self.redis.mget(key, generation_key), REDIS_TIMEOUT
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._breaker.trip(exc)
            return await load(image_id), "BYPASS"
        self._breaker.succeeded()
        if raw is not None:
            value = decode(raw)
            result: CacheResult = "HIT"
        else:
            value = await self._load(image_id, load, (generation or b"").decode())
            result = "MISS"
        if self._subscribed and started >= self._subscribed_since:
            # Reads begun before the subscription could miss an invalidation message.
            self.near.put(image_id, value, self.near_ttl, started)
        return value, result

    async def _load(self, image_id: uuid.UUID, load: Loader, seen: str) -> CachedImage | None:
        value = await load(image_id)
        ttl = self.ttl if value is not None else self.negative_ttl
        try:
            await asyncio.wait_for(
                self._store(keys=list(self._keys(image_id)), args=[seen, encode(value), ttl]),
                REDIS_TIMEOUT,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._breaker.trip(exc)
        return value

    async def invalidate(self, image_id: uuid.UUID) -> None:
        self.near.drop(image_id)
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
                pipe.publish(self.channel, str(image_id))
                await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            self._breaker.trip(exc)
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

    async def status(self) -> Probe:
        return await probe(lambda: asyncio.wait_for(self.redis.ping(), REDIS_TIMEOUT))

    async def close(self) -> None:
        for task in (self._redeliver, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
