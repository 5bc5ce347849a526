"""Prometheus series (contract section 6), in the process-wide default registry.

Counters and histograms count what this process did: an API process its uploads and,
in the embedded shape, its thumbnail jobs; a `chitram worker` the jobs it ran (it
serves them on its own metrics port). Gauges that describe shared state, such as the
queue's depth, are read when scraped.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created only doubles Prometheus

# Requests by route template (never a raw id: unknown paths are "<unmatched>").
HTTP_REQUESTS = Counter(
    "chitram_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "chitram_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# One per file: "accepted", or the lower-cased error code that refused it.
UPLOADS = Counter("chitram_uploads", "Uploaded files by result", ["result"])
UPLOAD_BYTES = Counter("chitram_upload_bytes", "Bytes of accepted uploads, as stored")
CACHE_REQUESTS = Counter(
    "chitram_cache_requests", "Metadata reads by cache result (hit, miss, bypass)", ["result"]
)
for _result in ("hit", "miss", "bypass"):
    CACHE_REQUESTS.labels(result=_result)
STORAGE_ERRORS = Counter(
    "chitram_storage_errors", "Object storage calls that failed", ["operation"]
)
DATABASE_ERRORS = Counter(
    "chitram_database_errors", "Database calls that failed to reach the database"
)
DATABASE_ERRORS.inc(0)

# Labelled by `app.jobs.outcomes.Outcome`, which exports every outcome from the start.
THUMBNAIL_JOBS = Counter("chitram_thumbnail_jobs", "Thumbnail job attempts by outcome", ["result"])
THUMBNAIL_JOB_SECONDS = Histogram(
    "chitram_thumbnail_job_duration_seconds",
    "Time one thumbnail job attempt took, from claim to outcome",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
THUMBNAIL_QUEUE_DEPTH = Gauge(
    "chitram_thumbnail_queue_depth", "Thumbnail jobs waiting to run (queued or deferred)"
)

# Redis-backed helpers that fall back to this process while Redis is down (app.infra.breaker).
CACHE_DOWN = Gauge("chitram_cache_down", "1 while the Redis metadata cache is bypassed")
RATE_LIMITED = Counter("chitram_rate_limited", "Requests refused by a rate limit", ["limit"])
LIMITER_FALLBACK = Gauge(
    "chitram_rate_limit_fallback", "1 while limits are counted in this process (Redis down)"
)
# Reads routed by app.infra.replicas, and each replica's state.
DATABASE_READS = Counter("chitram_database_reads_total", "Reads routed by ReadRouter", ["target"])
REPLICA_UP = Gauge("chitram_replica_usable", "1 while the replica takes reads", ["replica"])

# Tag jobs (app.jobs.tagging), labelled like thumbnail jobs by `app.jobs.outcomes.Outcome`.
TAGGER_JOBS = Counter("chitram_tagger_jobs", "Tag job attempts by outcome", ["result"])
# Circuit breakers (app.infra.circuits): 0 closed, 1 half-open, 2 open.
BREAKER_STATE = Gauge(
    "chitram_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["dependency"]
)

__all__ = [
    "BREAKER_STATE",
    "CACHE_DOWN",
    "CACHE_REQUESTS",
    "CONTENT_TYPE_LATEST",
    "DATABASE_ERRORS",
    "DATABASE_READS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "LIMITER_FALLBACK",
    "RATE_LIMITED",
    "REPLICA_UP",
    "STORAGE_ERRORS",
    "TAGGER_JOBS",
    "THUMBNAIL_JOBS",
    "THUMBNAIL_JOB_SECONDS",
    "THUMBNAIL_QUEUE_DEPTH",
    "UPLOADS",
    "UPLOAD_BYTES",
    "generate_latest",
]
