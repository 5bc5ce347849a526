"""A bounded pool of worker processes for CPU-bound work on untrusted images.

Processes rather than threads: decoding and container walking hold the GIL long enough
to starve the event loop, and a decoder that crashes on a hostile file takes down a
worker instead of the server. Workers fork from a preloaded forkserver, so they start
in milliseconds and never inherit the server's threads or locks.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
PRELOAD = ["app.images.validation"]


class WorkerCrashed(Exception):
    """A worker died running the task twice while a trivial task runs fine: the input
    itself kills it."""


class PoolUnavailable(RuntimeError):
    """Workers die even on a trivial task: the pool itself is broken (a bug, not input)."""


def _ping() -> bool:
    return True


class CpuPool:
    """Runs picklable functions in at most `workers` processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 2
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context)

    async def start(self) -> None:
        """Start the forkserver and every worker now, in a thread: the first submit would
        otherwise block the event loop for as long as the forkserver takes to boot."""
        await asyncio.to_thread(self._warm)

    def _warm(self) -> None:
        for future in [self._executor.submit(_ping) for _ in range(self.workers)]:
            future.result()

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args)` in a worker; a crashed pool is replaced and the task tried once more."""
        for attempt in (1, 2):
            executor = self._executor
            try:
                return await asyncio.wrap_future(executor.submit(fn, *args, **kwargs))
            except BrokenProcessPool:
                log.warning("a CPU worker died; starting a new pool", extra={"attempt": attempt})
                if self._executor is executor:
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._new_executor()
        if not await self._healthy():
            raise PoolUnavailable("CPU workers cannot run even a trivial task")
        raise WorkerCrashed(getattr(fn, "__name__", "task"))

    async def _healthy(self) -> bool:
        try:
            return await asyncio.wrap_future(self._executor.submit(_ping))
        except BrokenProcessPool:
            self._executor = self._new_executor()
            return False

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
