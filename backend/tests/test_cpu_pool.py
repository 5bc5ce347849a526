"""The CPU pool survives workers that die on hostile input."""

from __future__ import annotations

import pytest

from app.infra.cpu import CpuPool, WorkerCrashed
from tests.support.cpu_tasks import die, square

pytestmark = pytest.mark.anyio


async def test_runs_work_in_worker_processes() -> None:
    pool = CpuPool(workers=2)
    try:
        assert await pool.run(square, 12) == 144
    finally:
        pool.close()


async def test_a_task_that_kills_its_worker_is_reported_and_the_pool_recovers() -> None:
    pool = CpuPool(workers=2)
    try:
        with pytest.raises(WorkerCrashed):
            await pool.run(die, 1)
        assert await pool.run(square, 3) == 9
    finally:
        pool.close()
