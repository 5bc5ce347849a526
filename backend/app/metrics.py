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

from app.jobs.outcomes import Outcome

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created only doubles Prometheus

THUMBNAIL_JOBS = Counter("chitram_thumbnail_jobs", "Thumbnail job attempts by outcome", ["result"])
for _outcome in Outcome:  # every outcome is exported from the start, at zero
    THUMBNAIL_JOBS.labels(result=_outcome.value)
THUMBNAIL_JOB_SECONDS = Histogram(
    "chitram_thumbnail_job_duration_seconds",
    "Time one thumbnail job attempt took, from claim to outcome",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
THUMBNAIL_QUEUE_DEPTH = Gauge(
    "chitram_thumbnail_queue_depth", "Thumbnail jobs waiting to run (queued or deferred)"
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "THUMBNAIL_JOBS",
    "THUMBNAIL_JOB_SECONDS",
    "THUMBNAIL_QUEUE_DEPTH",
    "generate_latest",
]
