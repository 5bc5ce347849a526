"""How one thumbnail job attempt ended (also the `result` label of its metric)."""

from enum import StrEnum

from app.infra.metrics import THUMBNAIL_JOBS


class Outcome(StrEnum):
    READY = "ready"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"  # gone, or no longer pending: someone else finished it


for _outcome in Outcome:  # every outcome is exported from the start, at zero
    THUMBNAIL_JOBS.labels(result=_outcome.value)
