"""Where jobs go once their row commits: this process, or arq over Redis.

Two kinds of job share the machinery: thumbnails, dispatched after each upload, and
tags, dispatched by the thumbnail job once an image's thumbnails are settled. Both are
only delivery. Durability lives in the database (see `app.jobs.thumbnails` and
`app.jobs.tagging`): a lost dispatch, a dead process or a Redis outage leaves a
`pending` row that the sweeper dispatches again, so `dispatch` never fails its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.config import Settings
from app.infra.probe import Probe, probe
from app.infra.tracing import Carrier
from app.jobs.outcomes import Hint, Outcome, Result

log = logging.getLogger(__name__)
JOB_FUNCTION = "make_thumbnails"
TAG_FUNCTION = "tag_image"
# The kind of each arq function, in its job ids and log lines.
KINDS = {JOB_FUNCTION: "thumbnail", TAG_FUNCTION: "tags"}


class Jobs(Protocol):
    """What a queue runs: `ThumbnailJobs` or `TagJobs`."""

    settings: Settings

    async def run(
        self, image_id: uuid.UUID, link: Mapping[str, str] | None = None, hint: Hint | None = None
    ) -> Result: ...

    async def stale(self, *, everything: bool = False) -> list[uuid.UUID]: ...


class JobQueue(Protocol):
    async def start(self) -> None: ...

    async def dispatch(
        self, image_id: uuid.UUID, trace: Carrier | None = None, hint: Hint | None = None
    ) -> None:
        """Ask for the image's job; never raises (the sweeper is the fallback).
        `trace` is the asking request's span context, linked from the job's span;
        `hint` what an earlier job learnt that saves this one work (plain JSON)."""
        ...

    async def depth(self) -> int | None:
        """Jobs waiting (queued or deferred); None when it cannot be known right now."""
        ...

    async def status(self) -> Probe:
        """For /health: "up" or "down", and the round trip when there is one."""
        ...

    async def close(self) -> None: ...


def job_id(settings: Settings, image_id: uuid.UUID, function: str = JOB_FUNCTION) -> str:
    """One live job per image, kind and queue: arq refuses a second while the first exists."""
    return f"{settings.queue_name}:{KINDS[function]}:{image_id}"


class LocalQueue:
    """Runs the jobs inside this process: the embedded shape, no Redis.

    As many runners as CPU workers, fed from an in-memory queue with no duplicates;
    retries wait on timers; a sweeper task dispatches, at start-up, every pending row
    (no job of ours can be running yet) and then, periodically, the stale ones.
    """

    def __init__(
        self, settings: Settings, jobs: Jobs, runners: int, *, kind: str = "thumbnail"
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.runners = runners
        self.kind = kind
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._known: set[uuid.UUID] = set()  # queued, running or waiting to retry
        self._links: dict[uuid.UUID, Carrier] = {}  # span contexts of the asking requests
        self._hints: dict[uuid.UUID, Hint] = {}
        self._timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._runner()) for _ in range(self.runners)]
        self._tasks.append(asyncio.create_task(self._sweeper()))

    async def dispatch(
        self, image_id: uuid.UUID, trace: Carrier | None = None, hint: Hint | None = None
    ) -> None:
        if image_id not in self._known:
            self._known.add(image_id)
            if trace:
                self._links[image_id] = trace
            if hint:
                self._hints[image_id] = hint
            self._queue.put_nowait(image_id)

    async def depth(self) -> int:
        return self._queue.qsize() + len(self._timers)

    async def status(self) -> Probe:
        alive = bool(self._tasks) and not any(task.done() for task in self._tasks)
        return ("up" if alive else "down"), None

    async def _runner(self) -> None:
        while True:
            image_id = await self._queue.get()
            retry_in = None
            try:
                result = await self.jobs.run(
                    image_id, link=self._links.get(image_id), hint=self._hints.get(image_id)
                )
                if result.outcome is Outcome.RETRY:
                    retry_in = result.retry_in
            except Exception:
                # The database is down, or a bug: the row stays pending for the sweeper.
                log.exception(f"{self.kind} job crashed", extra={"image_id": str(image_id)})
            if retry_in is None:
                self._known.discard(image_id)
                self._links.pop(image_id, None)
                self._hints.pop(image_id, None)
            else:
                loop = asyncio.get_running_loop()
                self._timers[image_id] = loop.call_later(retry_in, self._retry, image_id)

    def _retry(self, image_id: uuid.UUID) -> None:
        self._timers.pop(image_id, None)
        self._queue.put_nowait(image_id)

    async def _sweeper(self) -> None:
        everything = True
        while True:
            try:
                for image_id in await self.jobs.stale(everything=everything):
                    await self.dispatch(image_id)
                everything = False
            except Exception:
                log.exception(f"{self.kind} sweep failed; trying again later")
            await asyncio.sleep(self.settings.thumbnail_sweep_interval_seconds)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for timer in self._timers.values():
            timer.cancel()
        self._tasks, self._timers = [], {}


class ArqQueue:
    """Sends jobs to `chitram worker` processes through arq's Redis queue."""

    def __init__(self, settings: Settings, redis: Redis, function: str = JOB_FUNCTION) -> None:
        self.settings = settings
        self.redis = arq_client(redis)
        self.function = function

    async def start(self) -> None:
        return None

    async def dispatch(
        self, image_id: uuid.UUID, trace: Carrier | None = None, hint: Hint | None = None
    ) -> None:
        await enqueue(
            self.redis, self.settings, image_id, trace=trace, function=self.function, hint=hint
        )

    async def depth(self) -> int | None:
        try:
            return int(await self.redis.zcard(self.settings.queue_name))
        except (RedisError, OSError):
            return None

    async def status(self) -> Probe:
        return await probe(self.redis.ping)

    async def close(self) -> None:
        return None  # the connection pool is the process's: its owner closes it


def arq_client(redis: Redis) -> ArqRedis:
    """arq's client over `redis`'s connection pool (and so over its timeouts)."""
    return ArqRedis(redis.connection_pool)


async def enqueue(
    redis: ArqRedis,
    settings: Settings,
    image_id: uuid.UUID,
    *,
    defer: float | None = None,
    trace: Carrier | None = None,
    function: str = JOB_FUNCTION,
    hint: Hint | None = None,
) -> None:
    extra: dict[str, Any] = {"trace": trace} if trace else {}
    if hint:
        extra["hint"] = dict(hint)
    try:
        await redis.enqueue_job(
            function,
            str(image_id),
            _job_id=job_id(settings, image_id, function),
            _queue_name=settings.queue_name,
            _defer_by=defer,
            **extra,
        )
    except (RedisError, OSError) as exc:
        log.warning(
            f"could not queue a {KINDS[function]} job; the sweeper will",
            extra={"image_id": str(image_id), "error": repr(exc)},
        )


def build_queue(
    settings: Settings,
    jobs: Jobs,
    runners: int,
    redis: Redis | None,
    function: str = JOB_FUNCTION,
) -> JobQueue:
    """arq over `redis` when there is one, else `runners` tasks in this process."""
    if redis is not None:
        return ArqQueue(settings, redis, function)
    return LocalQueue(settings, jobs, runners, kind=KINDS[function])
