"""Reading Prometheus text in tests."""

from __future__ import annotations


def sample(text: str, name: str) -> float:
    """The value of series `name` (with its labels, as printed), or 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
