"""The composition root: builds every shared resource once per process, and closes it.

The API's lifespan, `chitram worker` and the CLI commands all open their resources
here, so a process holds one of each: one database engine, one storage client, one CPU
pool and one Redis connection pool, shared by the metadata cache, the rate limiter, the
job queue and the read router.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.albums.presenter import AlbumPresenter
from app.albums.service import AlbumService
from app.auth.passwords import Passwords
from app.auth.service import AuthService
from app.config import Settings
from app.http.ratelimit import RateLimiter
from app.images.cache import InProcessCache, MetadataCache, NoCache
from app.images.library import LibraryService
from app.images.presenter import ImagePresenter
from app.images.redis_cache import RedisCache
from app.images.service import ImageService
from app.images.serving import ObjectCache
from app.images.upload import UploadService
from app.infra.cpu import CpuPool
from app.infra.db import Database
from app.infra.replicas import Reads, build_reads, changes_seen_by_reads
from app.jobs.queue import TAG_FUNCTION, JobQueue, build_queue
from app.jobs.tagging import TagJobs, after_thumbnails
from app.jobs.thumbnails import ThumbnailJobs
from app.storage import Storage
from app.storage.factory import build_storage
from app.storage.instrumented import InstrumentedStorage
from app.tagging.factory import build_tagger

# Redis calls on a request's path give up after this, then go without Redis (each user
# says how); the rate limiter relies on the socket timeout alone, so it must be this.
REQUEST_REDIS_TIMEOUT = 0.25
# `chitram worker`'s calls run off any request's path: arq's polling and job claims may
# wait longer (the cache and the read router still bound theirs with their own timeouts).
WORKER_REDIS_TIMEOUT = 2.0


@dataclass
class JobResources:
    """What thumbnail jobs need: `chitram worker` holds only these, the API all of
    `Resources`. `redis` is the process's one client (and connection pool), None
    without `REDIS_URL`."""

    settings: Settings
    redis: Redis | None
    database: Database
    storage: Storage
    cpu: CpuPool
    cache: MetadataCache
    reads: Reads
    jobs: ThumbnailJobs
    # Tag jobs follow thumbnail jobs: run here without Redis (started by the API), else
    # queued for `chitram worker` by whichever process ran the thumbnail job.
    tag_jobs: TagJobs
    tag_queue: JobQueue


@dataclass
class Resources(JobResources):
    """Everything a request may need that outlives it."""

    queue: JobQueue
    object_cache: ObjectCache
    presenter: ImagePresenter
    uploads: UploadService
    images: ImageService
    limiter: RateLimiter
    passwords: Passwords
    auth: AuthService
    library: LibraryService
    albums: AlbumService


def redis_client(settings: Settings, timeout: float) -> Redis | None:
    """The process's Redis client, or None without `REDIS_URL`. Its users share its
    connection pool. It connects lazily, so Redis being down never blocks start-up."""
    if not settings.redis_url:
        return None
    client: Redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # A connection idle this long is pinged before use: one Redis dropped meanwhile
        # (a restart) is replaced instead of failing a call.
        health_check_interval=30,
    )
    return client


async def open_storage(settings: Settings, storage: Storage | None = None) -> Storage:
    """The configured object storage (or `storage`), with its metrics."""
    return InstrumentedStorage(storage or await build_storage(settings))


def build_metadata_cache(settings: Settings, redis: Redis | None) -> MetadataCache:
    """Redis when configured (shared by every process); else in-process while this is the
    only process writing image rows (another `--workers` process could not reach it)."""
    if redis is not None:
        return RedisCache(redis, settings.redis_prefix, ttl=settings.metadata_cache_ttl_seconds)
    if settings.web_processes == 1:
        return InProcessCache(ttl=settings.metadata_cache_ttl_seconds)
    return NoCache()


async def open_job_resources(
    settings: Settings,
    storage: Storage | None = None,
    *,
    redis_timeout: float = REQUEST_REDIS_TIMEOUT,
) -> JobResources:
    """The engine, storage (unless one is given), CPU pool, cache, read router and jobs;
    nothing follows Redis or polls replicas yet. Close with `close_resources`."""
    redis = redis_client(settings, redis_timeout)
    database = Database(settings.resolved_database_url)
    storage = await open_storage(settings, storage)
    cpu = CpuPool(settings.cpu_workers)
    await cpu.start()
    # Rows a job marks ready must leave every API process's metadata cache...
    cache = build_metadata_cache(settings, redis)
    # ... after the read-your-writes markers of app.infra.replicas.
    reads = build_reads(settings, database, redis)
    changed = changes_seen_by_reads(reads, cache.invalidate)
    tagger = build_tagger(settings)
    tag_jobs = TagJobs(settings, database, storage, cpu, tagger, changed=changed)
    tag_queue = build_queue(settings, tag_jobs, cpu.workers, redis, TAG_FUNCTION)
    then = after_thumbnails(tag_queue) if tagger is not None else None
    jobs = ThumbnailJobs(settings, database, storage, cpu, changed=changed, then=then)
    return JobResources(
        settings, redis, database, storage, cpu, cache, reads, jobs, tag_jobs, tag_queue
    )


async def open_resources(settings: Settings, storage: Storage | None = None) -> Resources:
    """Everything the API (and `chitram reconcile`) uses; close with `close_resources`."""
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    base = await open_job_resources(settings, storage)
    # Without Redis the jobs run here; with it, in `chitram worker` (see app.jobs).
    queue = build_queue(settings, base.jobs, base.cpu.workers, base.redis)
    object_cache = ObjectCache(settings.object_cache_bytes)
    presenter = ImagePresenter(settings)
    uploads = UploadService(
        settings, base.database, base.reads, base.storage, base.cpu, queue, presenter
    )
    images = ImageService(
        base.database, base.reads, base.storage, base.cache, object_cache, presenter
    )
    limiter = RateLimiter(settings, base.redis)
    passwords = Passwords()
    auth = AuthService(settings, base.database, limiter, passwords)
    resources = Resources(
        **vars(base),
        queue=queue,
        object_cache=object_cache,
        presenter=presenter,
        uploads=uploads,
        images=images,
        limiter=limiter,
        passwords=passwords,
        auth=auth,
        library=LibraryService(base.database, base.reads, base.cache, presenter),
        albums=AlbumService(
            base.database, base.storage, images, presenter, AlbumPresenter(settings)
        ),
    )
    await passwords.warm()  # in a thread; once per process
    await queue.start()
    await base.tag_queue.start()
    await base.cache.start()  # Redis: follows invalidations, so its near cache may answer
    await base.reads.start()  # replicas: follows how far each has replayed
    return resources


async def close_resources(resources: JobResources) -> None:
    """Close what `open_resources` or `open_job_resources` opened; Redis last."""
    if isinstance(resources, Resources):
        await resources.queue.close()
    await resources.tag_queue.close()
    await resources.tag_jobs.close()
    await resources.cache.close()
    await resources.reads.close()
    resources.cpu.close()
    await resources.storage.close()
    await resources.database.dispose()
    if resources.redis is not None:
        await resources.redis.aclose()
