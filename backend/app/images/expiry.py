"""The expiry sweeper: deletes expired images, as `DELETE` does, a while after they
expire. They answer 404 from their expiry on (checked on every read); this only frees
their rows, objects and quota.

Every API process runs one, in both shapes: the work is a cheap indexed query per tick,
a race between two processes deleting the same image is settled by its row lock (the
loser finds nothing), and expiry never depends on a worker being up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.images.service import ImageService

log = logging.getLogger(__name__)
BATCH = 200


class ExpirySweeper:
    def __init__(self, images: ImageService, interval: float) -> None:
        self.images = images
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="expiry-sweeper")

    async def sweep(self) -> int:
        """Delete every image expired by now, a batch at a time; how many went."""
        total = 0
        while True:
            expired = await self.images.expire_due(BATCH)
            total += expired
            if expired < BATCH:
                return total

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("expiry sweep failed; trying again later")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
