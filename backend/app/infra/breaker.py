"""Stop calling a failed Redis for a few seconds, then try again: one log line per outage."""

from __future__ import annotations

import logging
import time

from prometheus_client import Gauge

log = logging.getLogger(__name__)
RETRY_AFTER = 5.0


class Breaker:
    """Open (bypass Redis) for `RETRY_AFTER` seconds after a failure; `gauge` shows it."""

    def __init__(self, what: str, gauge: Gauge) -> None:
        self.what = what
        self.gauge = gauge
        self._retry_at = 0.0

    @property
    def open(self) -> bool:
        return self._retry_at > time.monotonic()

    def trip(self, exc: BaseException) -> None:
        if not self.open:
            log.warning(self.what, extra={"error": repr(exc)})
        self._retry_at = time.monotonic() + RETRY_AFTER
        self.gauge.set(1)

    def succeeded(self) -> None:
        self.gauge.set(0)
