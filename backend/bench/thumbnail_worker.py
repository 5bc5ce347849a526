"""Sets of thumbnails per second made by one `chitram worker` on this machine, end to end.

1. Starts `chitram serve` with `REDIS_URL` (the machine's Redis, a queue of its own) so
   that it queues jobs and runs none itself, and uploads `--images` distinct 12 MP
   photo-like JPEGs (same pixels, different bytes: no deduplication).
2. Starts one `chitram worker` on the same database and storage, and times how long it
   takes to bring every image to `ready`: each job claims the row, reads the original
   from storage, makes three WebP thumbnails in the CPU pool, stores them and commits.
3. Reports the steady rate, from the first image ready to the last (worker start-up
   excluded), and where the CPU went. Target: >= 20 sets/s on two cores.

    uv run python -m bench.thumbnail_worker [--images 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.common import (
    CpuMeter,
    check_jfif,
    embedded_server,
    jpeg_variant,
    machine_info,
    timestamp,
    write_results,
)
from bench.thumbnails import SETS_TARGET, photo_jpeg
from tests.support.server import CHITRAM

MB = 1024 * 1024


def _ready(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM images WHERE thumbnail_status = 'ready'"
        ).fetchone()
    return int(row[0])


def _upload_all(url: str, photo: bytes, count: int) -> None:
    def one(variant: int) -> None:
        data = jpeg_variant(photo, variant)
        response = httpx.post(
            f"{url}/api/v1/images/upload", files={"file": ("p.jpg", data)}, timeout=60
        )
        response.raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(count)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    photo = photo_jpeg()
    check_jfif(photo)
    queue = f"chitram-bench-{secrets.token_hex(4)}"
    env = {"REDIS_URL": args.redis, "QUEUE_NAME": queue, "MAX_UPLOAD_BYTES": str(8 * MB)}
    try:
        with embedded_server(**env) as server:
            print(f"uploading {args.images} x {len(photo) / 1e6:.1f} MB photos ...")
            _upload_all(server.url, photo, args.images)
            assert _ready(server.db_path) == 0, "the API made thumbnails itself"
            worker_env = {
                **os.environ,
                **env,
                "DATA_DIR": str(server.data_dir),
                "LOG_LEVEL": "WARNING",
                "LOG_FORMAT": "json",
            }
            worker = subprocess.Popen([CHITRAM, "worker", "--metrics-port", "0"], env=worker_env)
            try:
                started = time.perf_counter()
                with CpuMeter(worker.pid) as meter:
                    first_at, first_count = None, 0
                    deadline = started + args.timeout
                    while (done := _ready(server.db_path)) < args.images:
                        if done and first_at is None:
                            first_at, first_count = time.perf_counter(), done
                        if time.perf_counter() > deadline or worker.poll() is not None:
                            raise RuntimeError(f"only {done} of {args.images} ready")
                        time.sleep(0.02)
                    finished = time.perf_counter()
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)
    finally:
        client = redis.Redis.from_url(args.redis)
        keys = list(client.scan_iter(f"*{queue}*"))
        if keys:
            client.delete(*keys)
        client.close()
    assert first_at is not None
    steady = (args.images - first_count) / (finished - first_at)
    return {
        "images": args.images,
        "photo_bytes": len(photo),
        "total_s": finished - started,
        "startup_to_first_s": first_at - started,
        "steady_sets_per_s": steady,
        "cpu": meter.result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    result = run(args)
    cpu = result["cpu"]
    print(
        f"worker: {result['steady_sets_per_s']:.1f} sets/s steady (target >= {SETS_TARGET}); "
        f"{result['images']} images in {result['total_s']:.1f} s including "
        f"{result['startup_to_first_s']:.1f} s to the first; worker tree "
        f"{cpu['server_cores']:.2f} cores, steal {cpu['steal_cores']:.2f}"
    )
    results = {"started_at": timestamp(), "machine": machine_info(), **result}
    results["pass"] = result["steady_sets_per_s"] >= SETS_TARGET
    print(f"results: {write_results('thumbnail_worker', results)}")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
