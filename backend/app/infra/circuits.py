"""Circuit breakers for calls to other services, on the purgatory library (ADR: tagger).

A breaker opens after `threshold` failures in a row: for `ttl` seconds every call fails
at once with `CircuitOpen` instead of waiting on a dead service; then one call is let
through (half-open), and its outcome closes or reopens the breaker. Each breaker's state
is the gauge `chitram_breaker_state{dependency}`: 0 closed, 1 half-open, 2 open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from app.infra.metrics import BREAKER_STATE

STATE_VALUES = {"closed": 0, "half-opened": 1, "opened": 2}


class CircuitOpen(Exception):
    """The dependency failed too often lately: not called this time."""


class Circuit:
    """One dependency's breaker, in this process."""

    def __init__(self, dependency: str, *, threshold: int = 5, ttl: float = 30.0) -> None:
        self.dependency = dependency
        self._breakers = AsyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=ttl)
        self._breakers.add_listener(self._changed)
        BREAKER_STATE.labels(dependency=dependency).set(0)

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Run the block through the breaker: an exception out of it counts as a failure;
        `CircuitOpen` when the breaker is open (the block does not run)."""
        breaker = await self._breakers.get_breaker(self.dependency)
        try:
            async with breaker:
                # purgatory announces changes as the block ends; a trial call shows
                # half-open while it runs.
                self._show(self.dependency, breaker.context.state)
                yield
        except OpenedState as exc:
            raise CircuitOpen(f"{self.dependency} is failing; not called") from exc

    def _changed(self, circuit: str, event: str, payload: Any) -> None:
        if event == "state_changed":
            self._show(circuit, payload.state)

    @staticmethod
    def _show(circuit: str, state: str) -> None:
        BREAKER_STATE.labels(dependency=circuit).set(STATE_VALUES[state])
