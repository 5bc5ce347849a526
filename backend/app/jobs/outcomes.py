"""How one thumbnail job attempt ended (also the `result` label of its metric)."""

from enum import StrEnum


class Outcome(StrEnum):
    READY = "ready"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"  # gone, or no longer pending: someone else finished it
