"""How one job attempt ended (also the `result` label of its metric), and when to retry."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from app.config import Settings
from app.infra.metrics import TAGGER_JOBS, THUMBNAIL_JOBS

MAX_RETRY_DELAY = 600.0
# What one job learnt that saves the next one work, as plain JSON (it may cross Redis).
Hint = Mapping[str, object]


class Outcome(StrEnum):
    READY = "ready"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"  # gone, or no longer pending: someone else finished it


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    retry_in: float | None = None


def retry_delay(settings: Settings, attempt: int) -> float:
    """Exponential backoff: base, 4x base, 16x base ... capped at ten minutes."""
    base = settings.thumbnail_retry_base_seconds
    return float(min(base * 4 ** (attempt - 1), MAX_RETRY_DELAY))


for _outcome in Outcome:  # every outcome is exported from the start, at zero
    THUMBNAIL_JOBS.labels(result=_outcome.value)
    TAGGER_JOBS.labels(result=_outcome.value)
