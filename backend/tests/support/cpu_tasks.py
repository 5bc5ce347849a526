"""Functions for CPU-pool tests; importable by worker processes."""

from __future__ import annotations

import os


def square(value: int) -> int:
    return value * value


def die(_: int) -> int:
    os._exit(1)  # what a segfaulting decoder looks like from outside
