"""How /health asks a dependency whether it is there: one round trip, timed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

Status = Literal["up", "down", "disabled"]
Probe = tuple[Status, float | None]  # and the round trip in milliseconds when up
DISABLED: Probe = ("disabled", None)


async def probe(check: Callable[[], Awaitable[object]]) -> Probe:
    started = time.perf_counter()
    try:
        await check()
    except Exception:
        return "down", None
    return "up", round((time.perf_counter() - started) * 1000, 2)
