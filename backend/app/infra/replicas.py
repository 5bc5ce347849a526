"""Reads from PostgreSQL streaming replicas (`DATABASE_READ_URLS`) that never show a
client an older state than one it has caused.

How a read chooses (see docs/adr/0014-read-replicas.md):

- Every process polls the primary's WAL position and each replica's replayed position a
  few times a second. A replica is *usable* while it answers and has replayed what the
  primary had written `REPLICA_MAX_LAG_SECONDS` ago; else its reads go to the primary.
- After a write that a later read must see (a delete, finished thumbnails, an owner's
  upload), the writer records the primary's WAL position in Redis under the image and
  the owner (`<prefix>:rw:v1:image:<id>`, `...:user:<id>`), *before* it invalidates the
  cache. Markers live twice the lag bound: an older write is on every usable replica.
- A read names what it is about (an image, a user's listing). It runs on a usable
  replica that has replayed past those markers, else on the primary. A miss on a
  replica is asked again of the primary: a brand-new image has no marker at all.
- Whenever a marker cannot be trusted, the read goes to the primary: Redis failing, a
  marker this process failed to record (for the lag bound), or Redis having lost its
  data (its epoch key younger than the lag bound).
- A replica that fails mid-read is marked down and the read is retried on the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import ServiceUnavailable
from app.infra.db import Database
from app.infra.metrics import DATABASE_READS, REPLICA_UP

log = logging.getLogger(__name__)
T = TypeVar("T")
Query = Callable[[AsyncSession], Awaitable[T]]
REDIS_TIMEOUT = 0.25
POLL_INTERVAL = 0.2
# A replica whose last answer is older than this is treated as down.
POLL_STALE_AFTER = 2.0


def parse_lsn(value: str) -> int:
    """PostgreSQL's `X/Y` log sequence number as one comparable integer."""
    high, low = value.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class Reads:
    """Where reads run, and what a writer tells them so that later reads see the write.
    This base runs every read on the primary (no replicas: nothing to tell)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def read(
        self,
        query: Query[T],
        *,
        image_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        confirm_missing: bool = False,
    ) -> T:
        async with self.database.reader() as session:
            return await query(session)

    async def wrote(
        self, *, image_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
    ) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


# A dead replica is noticed in seconds, not after asyncpg's default minute.
REPLICA_CONNECT_TIMEOUT = 2.0


@dataclass(eq=False)
class Replica:
    name: str
    database: Database  # its reads fail as ServiceUnavailable when it is unreachable
    replayed: int = -1  # -1: unknown or down
    answered_at: float = 0.0

    def mark_down(self) -> None:
        self.replayed = -1
        REPLICA_UP.labels(replica=self.name).set(0)


@dataclass
class _PrimarySamples:
    """The primary's WAL position over the last `window` seconds."""

    window: float
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, now: float, lsn: int) -> None:
        self.samples.append((now, lsn))
        while self.samples and self.samples[0][0] < now - self.window:
            self.samples.popleft()

    def lag_floor(self) -> int | None:
        """A replica that replayed this is at most `window` seconds behind."""
        return self.samples[0][1] if self.samples else None


class ReadRouter(Reads):
    """Routes reads between the primary and replicas; see the module docstring."""

    def __init__(
        self,
        database: Database,
        replica_urls: Sequence[str],
        redis: Redis,
        prefix: str,
        *,
        max_lag: float,
    ) -> None:
        super().__init__(database)
        self.max_lag = max_lag
        self.replicas = []
        for index, url in enumerate(replica_urls):
            replica = Database(url, connect_timeout=REPLICA_CONNECT_TIMEOUT)
            self.replicas.append(Replica(f"replica-{index}", replica))
        self.redis = redis  # the process's client: its owner closes it
        self.prefix = f"{prefix}:rw:v1"
        self.marker_ttl = max(1, round(2 * max_lag))
        self._primary = _PrimarySamples(max_lag)
        self._blind_until = 0.0  # this process failed to record a marker: primary only
        self._poller: asyncio.Task[None] | None = None

    # ---- writes -------------------------------------------------------------------------

    async def wrote(
        self, *, image_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
    ) -> None:
        """Record the primary's position under the image and user just written."""
        keys = self._marker_keys(image_id, user_id)
        if not keys:
            return
        try:
            lsn = await self._primary_lsn()
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, lsn, ex=self.marker_ttl)
                await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT)
        except (RedisError, OSError, TimeoutError, ServiceUnavailable) as exc:
            # Another process may now read this write's absence from a replica until
            # it catches up; this one reads only the primary for as long as that may be.
            self._blind_until = time.monotonic() + self.max_lag
            log.warning("read-your-writes marker not recorded", extra={"error": repr(exc)})

    async def _primary_lsn(self) -> int:
        async with self.database.reader() as session:
            value = (await session.execute(text("SELECT pg_current_wal_lsn()::text"))).scalar()
        return parse_lsn(str(value))

    def _marker_keys(self, image_id: uuid.UUID | None, user_id: uuid.UUID | None) -> list[str]:
        keys = []
        if image_id is not None:
            keys.append(f"{self.prefix}:image:{image_id}")
        if user_id is not None:
            keys.append(f"{self.prefix}:user:{user_id}")
        return keys

    # ---- reads --------------------------------------------------------------------------

    async def read(
        self,
        query: Query[T],
        *,
        image_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        confirm_missing: bool = False,
    ) -> T:
        """`query` on a replica that has every change the reader must see, else on the
        primary; with `confirm_missing`, a None from a replica is asked of the primary."""
        replica = await self._choose(self._marker_keys(image_id, user_id))
        if replica is not None:
            try:
                async with replica.database.reader() as session:
                    result = await query(session)
            except ServiceUnavailable as exc:
                self._replica_failed(replica, exc)
            else:
                DATABASE_READS.labels(target="replica").inc()
                if result is not None or not confirm_missing:
                    return result
        DATABASE_READS.labels(target="primary").inc()
        return await super().read(query)

    def _replica_failed(self, replica: Replica, exc: BaseException) -> None:
        if replica.replayed >= 0:
            log.warning("read replica failed", extra={"replica": replica.name, "error": repr(exc)})
        replica.mark_down()

    async def _choose(self, keys: list[str]) -> Replica | None:
        now = time.monotonic()
        floor = self._primary.lag_floor()
        usable = [
            r
            for r in self.replicas
            if floor is not None and r.replayed >= floor and now - r.answered_at < POLL_STALE_AFTER
        ]
        if not usable or now < self._blind_until:
            return None
        needed = await self._needed(keys)
        if needed is None:
            return None
        caught_up = [r for r in usable if r.replayed >= needed]
        return random.choice(caught_up) if caught_up else None

    async def _needed(self, keys: list[str]) -> int | None:
        """The newest marker of `keys`, 0 for none; None when markers cannot be trusted."""
        epoch_key = f"{self.prefix}:epoch"
        try:
            epoch, *markers = await asyncio.wait_for(
                self.redis.mget(epoch_key, *keys), REDIS_TIMEOUT
            )
            if epoch is None:
                # New (or emptied) Redis: markers of earlier writes are gone, so trust
                # them only once those writes are older than the lag bound.
                await asyncio.wait_for(
                    self.redis.set(epoch_key, time.time(), nx=True), REDIS_TIMEOUT
                )
                return None
        except (RedisError, OSError, TimeoutError):
            return None
        if time.time() - float(epoch) < self.max_lag:
            return None
        return max((int(m) for m in markers if m is not None), default=0)

    # ---- polling ------------------------------------------------------------------------

    async def start(self) -> None:
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(ServiceUnavailable):
                self._primary.add(time.monotonic(), await self._primary_lsn())
            await asyncio.gather(*(self._poll_replica(r) for r in self.replicas))
            await asyncio.sleep(POLL_INTERVAL)

    async def _poll_replica(self, replica: Replica) -> None:
        try:
            async with replica.database.reader() as session:
                replay = await session.execute(text("SELECT pg_last_wal_replay_lsn()::text"))
                value = replay.scalar()
        except (ServiceUnavailable, DBAPIError) as exc:
            if replica.replayed >= 0:
                log.warning(
                    "read replica unreachable", extra={"replica": replica.name, "error": repr(exc)}
                )
            replica.mark_down()
            return
        if value is None:  # not in recovery: a promoted or misconfigured "replica"
            replica.mark_down()
            return
        if replica.replayed < 0:
            log.info("read replica answering", extra={"replica": replica.name})
        replica.replayed = parse_lsn(str(value))
        replica.answered_at = time.monotonic()
        REPLICA_UP.labels(replica=replica.name).set(1)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for replica in self.replicas:
            await replica.database.dispose()


def changes_seen_by_reads(
    reads: Reads, invalidate: Callable[[uuid.UUID], Awaitable[None]]
) -> Callable[[uuid.UUID], Awaitable[None]]:
    """What a worker calls when an image row changed: the marker first, then the cache,
    so that a reader refilling the cache can never do so from a replica behind it."""

    async def changed(image_id: uuid.UUID) -> None:
        await reads.wrote(image_id=image_id)
        await invalidate(image_id)

    return changed


def build_reads(settings: Settings, database: Database, redis: Redis | None) -> Reads:
    """A router over `DATABASE_READ_URLS` (its markers in `redis`), or the primary alone."""
    if not settings.database_read_urls:
        return Reads(database)
    assert redis is not None  # Settings refuses replicas without Redis
    return ReadRouter(
        database,
        settings.database_read_urls,
        redis,
        settings.redis_prefix,
        max_lag=settings.replica_max_lag_seconds,
    )
