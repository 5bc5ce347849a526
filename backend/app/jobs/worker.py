"""`chitram worker`: runs thumbnail and tag jobs from arq's Redis queue, on any number of
machines.

Why arq (ADR 0006): it is asyncio-native like the rest of the code (the job awaits the
database and storage directly); a job stays in Redis until a worker finishes it, so a
worker killed mid-job loses nothing (another picks the job up once the dead worker's
in-progress mark expires, `THUMBNAIL_JOB_TIMEOUT_SECONDS` + 10 s); job ids make
dispatch idempotent; and its cron jobs get per-tick ids, so the sweeper runs once per
tick however many workers there are.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

from arq import Retry, Worker, cron, func
from prometheus_client import start_http_server
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import wiring
from app.config import Settings
from app.infra import tracing
from app.jobs.outcomes import Outcome
from app.jobs.queue import JOB_FUNCTION, TAG_FUNCTION, arq_client, enqueue
from app.jobs.tagging import TagJobs
from app.jobs.thumbnails import ThumbnailJobs

log = logging.getLogger(__name__)
RESTART_DELAY = 2.0


async def make_thumbnails(
    ctx: dict[str, Any], image_id: str, trace: dict[str, str] | None = None
) -> str:
    """The arq job; `trace` is the queuing request's span context, for a span link."""
    jobs: ThumbnailJobs = ctx["jobs"]
    result = await jobs.run(uuid.UUID(image_id), link=trace)
    if result.outcome is Outcome.RETRY:
        raise Retry(defer=result.retry_in)
    return result.outcome.value


async def tag_image(
    ctx: dict[str, Any],
    image_id: str,
    trace: dict[str, str] | None = None,
    hint: dict[str, object] | None = None,
) -> str:
    """The arq tag job; `hint` holds the pixel features its thumbnail job read."""
    jobs: TagJobs = ctx["tag_jobs"]
    result = await jobs.run(uuid.UUID(image_id), link=trace, hint=hint)
    if result.outcome is Outcome.RETRY:
        raise Retry(defer=result.retry_in)
    return result.outcome.value


async def sweep(ctx: dict[str, Any]) -> int:
    """Queue every pending row that went quiet (its dispatch was lost, or its worker died
    after arq gave up on it), thumbnails and tags. arq refuses duplicates of jobs that
    still exist."""
    jobs: ThumbnailJobs = ctx["jobs"]
    stale = await jobs.stale()
    for image_id in stale:
        await enqueue(ctx["redis"], jobs.settings, image_id)
    if stale:
        log.info("sweeper queued stale thumbnail jobs", extra={"count": len(stale)})
    tag_jobs: TagJobs | None = ctx.get("tag_jobs")
    untagged = await tag_jobs.stale() if tag_jobs is not None else []
    for image_id in untagged:
        await enqueue(ctx["redis"], jobs.settings, image_id, function=TAG_FUNCTION)
    if untagged:
        log.info("sweeper queued stale tag jobs", extra={"count": len(untagged)})
    return len(stale) + len(untagged)


def _sweep_schedule(interval: int) -> dict[str, set[int]]:
    if interval < 60:
        return {"second": set(range(0, 60, interval))}
    return {"second": {0}, "minute": set(range(0, 60, max(1, interval // 60)))}


def build_worker(
    settings: Settings,
    jobs: ThumbnailJobs,
    redis: Redis,
    *,
    burst: bool = False,
    tag_jobs: TagJobs | None = None,
) -> Worker:
    """An arq worker for `settings.queue_name` over `redis`'s connection pool (which its
    `close` disconnects: the pool connects again when next used); `burst` stops it once
    the queue is empty. Without `tag_jobs` it runs no tag jobs (nor sweeps for them)."""
    # arq's own try limit only backs up ours, which the database counts.
    max_tries = settings.thumbnail_max_attempts + 3
    functions = [func(make_thumbnails, name=JOB_FUNCTION, max_tries=max_tries)]
    if tag_jobs is not None:
        # A tag job may wait on the tagger for its whole timeout, after its own reads.
        timeout = settings.thumbnail_job_timeout_seconds + settings.tagger_timeout_seconds
        functions.append(func(tag_image, name=TAG_FUNCTION, max_tries=max_tries, timeout=timeout))
    return Worker(
        functions=functions,
        cron_jobs=[
            cron(
                sweep,
                name=f"{settings.queue_name}:sweep",
                run_at_startup=True,
                unique=True,
                **_sweep_schedule(settings.thumbnail_sweep_interval_seconds),  # type: ignore[arg-type]
            )
        ],
        redis_pool=arq_client(redis),
        queue_name=settings.queue_name,
        ctx={"jobs": jobs, "tag_jobs": tag_jobs},
        max_jobs=jobs.cpu.workers * 4,  # the pool stays busy while other jobs do I/O
        job_timeout=settings.thumbnail_job_timeout_seconds,
        keep_result=0,  # a finished job's id is free again at once
        poll_delay=0.25,  # between reads of the queue (up to 100 job ids each)
        health_check_interval=30,
        health_check_key=f"{settings.queue_name}:health-check",
        burst=burst,
        handle_signals=not burst,
    )


async def run_worker(settings: Settings, *, metrics_host: str, metrics_port: int) -> int:
    """Run until SIGTERM or SIGINT; restart the arq worker while Redis is unreachable."""
    if not settings.redis_url:
        log.error("chitram worker needs REDIS_URL; without it the API runs the jobs itself")
        return 2
    if metrics_port:
        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            log.warning("worker metrics not served", extra={"error": repr(exc)})
    tracing.setup(settings, "chitram-worker")  # before the engines, so SQL is traced
    # The cache and the read router are only written to here: invalidations and markers
    # of the rows jobs change, never followed or polled.
    resources = await wiring.open_job_resources(settings, redis_timeout=wiring.WORKER_REDIS_TIMEOUT)
    assert resources.redis is not None  # REDIS_URL is set
    log.info("worker started", extra={"queue": settings.queue_name, "pid": os.getpid()})
    try:
        while True:
            worker = build_worker(
                settings, resources.jobs, resources.redis, tag_jobs=resources.tag_jobs
            )
            try:
                await worker.async_run()
                return 0
            except asyncio.CancelledError:
                return 0  # SIGTERM or SIGINT: arq cancelled its jobs and queued them again
            except (RedisError, OSError) as exc:
                log.warning("Redis unreachable; worker restarting", extra={"error": repr(exc)})
                await asyncio.sleep(RESTART_DELAY)
            finally:
                await _close_quietly(worker)
    finally:
        await wiring.close_resources(resources)


async def _close_quietly(worker: Worker) -> None:
    try:
        await worker.close()
    except (RedisError, OSError) as exc:
        log.debug("worker closed without Redis", extra={"error": repr(exc)})
