"""The basic tagger's cost: CPU per image, and thumbnail throughput with tagging on.

1. In this process, CPU time (`time.process_time`, median of `--rounds`) per image of a
   small corpus (a noisy 12 MP photo, a camera photo with EXIF, a 1080p PNG screenshot,
   a PNG cut-out with alpha, an animated GIF) of what tagging adds:
   - `features`: `app.tagging.features.features_of` on the large rendition, as the
     thumbnail job runs it in the CPU pool before encoding;
   - `tag`: `BasicTagger.tag` from those features (what the tag job computes);
   - and, for comparison, `placeholder` (the ThumbHash, made with every thumbnail set
     whatever the tagger), `thumbnails` (the whole `render`), and `from original`
     (`features_of_original`: the sweeper's path, when no thumbnail job handed the
     features over). Target: features + tag <= 5 ms.
   Then the whole tag job as a worker runs it after a thumbnail job (the features handed
   over), in this process over SQLite: claim, camera lookup, tags, write, cache
   invalidation; its CPU per image (`tag_job_ms`), against the thumbnail job's CPU (the
   render, measured above) gives the throughput cost in CPU terms, which a busy machine
   does not blur the way it blurs wall-clock rates.
2. End to end, like `bench.thumbnail_worker`: `chitram serve` with Redis queues
   `--images` distinct 12 MP photos, then one `chitram worker` works through them, once
   with `TAGGER=none` and once with `TAGGER=basic` (fresh server and data each). Reported:
   thumbnail sets per second (first to last image ready), with tagging on until the last
   image's tags are ready too, and the worker's CPU per image. Target: with tagging on,
   >= 90% of the thumbnail rate with `TAGGER=none`.

    uv run python -m bench.tagger [--rounds 30] [--images 100] [--repeat 3] [--skip-worker]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import redis
from asgi_lifespan import LifespanManager
from PIL import Image

from app.config import Settings
from app.images.thumbnails import THUMBNAIL_SIZES, displayed, fit, placeholder, render
from app.jobs.tagging import features_of_original
from app.main import create_app
from app.ops.cli import migrate
from app.tagging.base import TagInput
from app.tagging.basic import BasicTagger
from app.tagging.features import ImageFeatures, features_of
from app.wiring import close_resources, open_job_resources
from bench.common import (
    CpuMeter,
    embedded_server,
    jpeg_variant,
    machine_info,
    print_table,
    timestamp,
    write_results,
)
from bench.thumbnails import photo_jpeg
from tests.support import flows
from tests.support.app import client_from
from tests.support.images import noisy_jpeg
from tests.support.server import CHITRAM
from tests.tagging import pictures
from tests.tagging.support import execute, wait_for_tags

FORMATS = ("jpeg", "png", "webp", "gif")
MAX_PIXELS = 50_000_000
CPU_TARGET_MS = 5.0
THROUGHPUT_TARGET = 0.9
MB = 1024 * 1024


def corpus() -> dict[str, bytes]:
    return {
        "photo 12 MP (JPEG)": photo_jpeg(),
        "camera photo 1200x800 (JPEG+EXIF)": pictures.photo((1200, 800)),
        "screenshot 1920x1080 (PNG)": pictures.screenshot((1920, 1080)),
        "cut-out 1000x800 (PNG, alpha)": pictures.photo_cutout((1000, 800)),
        "animated 400x300x12 (GIF)": pictures.animated_gif(12, (400, 300)),
    }


def _cpu_ms(run: Callable[[], object], rounds: int) -> float:
    run()  # warm lazy imports and caches
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        run()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


class _Known:
    def __init__(self, features: ImageFeatures) -> None:
        self._features = features

    async def features(self) -> ImageFeatures:
        return self._features

    async def jpeg(self, max_side: int) -> bytes:
        raise NotImplementedError


def _tag_ms(data: bytes, features: ImageFeatures, rounds: int) -> float:
    with Image.open(BytesIO(data)) as image:
        size, frames = image.size, getattr(image, "n_frames", 1)
    tagger = BasicTagger(5)
    image_input = TagInput(size[0], size[1], frames, True, _Known(features))

    async def timed() -> float:
        samples = []
        for _ in range(rounds):
            started = time.process_time()
            await tagger.tag(image_input)
            samples.append((time.process_time() - started) * 1000)
        return statistics.median(samples)

    return asyncio.run(timed())


def cpu_per_image(rounds: int) -> dict[str, dict[str, float]]:
    results = {}
    for name, data in corpus().items():
        large = displayed(data, FORMATS, MAX_PIXELS)
        small = large.resize(fit(*large.size, THUMBNAIL_SIZES["small"]))
        features = features_of(large)
        results[name] = {
            "features_ms": _cpu_ms(lambda: features_of(large), rounds),  # noqa: B023
            "tag_ms": _tag_ms(data, features, rounds),
            "placeholder_ms": _cpu_ms(lambda: placeholder(small), rounds),  # noqa: B023
            "thumbnails_ms": _cpu_ms(lambda: render(data, FORMATS), max(3, rounds // 5)),  # noqa: B023
            "from_original_ms": _cpu_ms(
                lambda: features_of_original(data, FORMATS, MAX_PIXELS),  # noqa: B023
                max(3, rounds // 5),
            ),
        }
    return results


def tag_job_cpu(count: int) -> dict[str, float]:
    """CPU per tag job (claim, camera lookup, tags, write, invalidation) with the features
    handed over, in this process over a fresh SQLite database."""
    with tempfile.TemporaryDirectory(prefix="chitram-bench-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), cpu_workers=1)
        migrate(settings)
        return asyncio.run(_tag_jobs(settings, count))


async def _tag_jobs(settings: Settings, count: int) -> dict[str, float]:
    async with (
        LifespanManager(create_app(settings), startup_timeout=120) as manager,
        client_from(manager.app, "127.0.0.1") as client,
    ):
        uploaded = [
            await flows.upload_ok(client, noisy_jpeg(64, 48, seed=seed)) for seed in range(count)
        ]
        for body in uploaded:
            assert (await wait_for_tags(client, body["id"]))["tags_status"] == "ready"
    await execute(settings, "UPDATE images SET tags_status = 'pending'")
    hint = ImageFeatures(transparent=False, flat=False, colours=("gray",)).as_hint()
    resources = await open_job_resources(settings)
    try:
        ids = [uuid.UUID(body["id"]) for body in uploaded]
        await resources.tag_jobs.run(ids[0], hint=hint)  # warm
        started = time.process_time()
        for image_id in ids[1:]:
            assert (await resources.tag_jobs.run(image_id, hint=hint)).outcome == "ready"
        elapsed = time.process_time() - started
    finally:
        await close_resources(resources)
    return {"tag_job_ms": 1000 * elapsed / (count - 1)}


# ---- end to end -------------------------------------------------------------------------


def _count(db: Path, where: str) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        row = connection.execute(f"SELECT count(*) FROM images WHERE {where}").fetchone()  # noqa: S608
    return int(row[0])


def _upload_all(url: str, photo: bytes, count: int) -> None:
    def one(variant: int) -> None:
        response = httpx.post(
            f"{url}/api/v1/images/upload",
            files={"file": ("p.jpg", jpeg_variant(photo, variant))},
            timeout=60,
        )
        response.raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(count)))


def worker_run(tagger: str, photo: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """One worker through `--images` uploads with `TAGGER=tagger`: rates and CPU."""
    queue = f"chitram-bench-{secrets.token_hex(4)}"
    env = {
        "REDIS_URL": args.redis,
        "QUEUE_NAME": queue,
        "MAX_UPLOAD_BYTES": str(8 * MB),
        "TAGGER": tagger,
    }
    thumbnails_ready = "thumbnail_status = 'ready'"
    settled = thumbnails_ready + (" AND tags_status = 'ready'" if tagger != "none" else "")
    try:
        with embedded_server(**env) as server:
            _upload_all(server.url, photo, args.images)
            worker_env = {
                **os.environ,
                **env,
                "DATA_DIR": str(server.data_dir),
                "LOG_LEVEL": "WARNING",
                "LOG_FORMAT": "json",
            }
            worker = subprocess.Popen([CHITRAM, "worker", "--metrics-port", "0"], env=worker_env)
            try:
                marks = _watch(server.db_path, worker, thumbnails_ready, settled, args)
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)
    finally:
        client = redis.Redis.from_url(args.redis)
        keys = list(client.scan_iter(f"*{queue}*"))
        if keys:
            client.delete(*keys)
        client.close()
    return {"tagger": tagger, "images": args.images, **marks}


def _watch(
    db: Path,
    worker: subprocess.Popen[bytes],
    thumbnails_ready: str,
    settled: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Poll until every image is settled: the steady rates, and the worker's CPU."""
    started = time.perf_counter()
    first: tuple[float, int] | None = None
    thumbnails_done_at: float | None = None
    with CpuMeter(worker.pid) as meter:
        while (done := _count(db, settled)) < args.images:
            ready = _count(db, thumbnails_ready)
            now = time.perf_counter()
            if ready and first is None:
                first = (now, ready)
            if ready == args.images and thumbnails_done_at is None:
                thumbnails_done_at = now
            if now - started > args.timeout or worker.poll() is not None:
                raise RuntimeError(f"only {done} of {args.images} settled")
            time.sleep(0.02)
        finished = time.perf_counter()
    assert first is not None
    thumbnails_done_at = thumbnails_done_at or finished
    cpu_s = meter.result["server_cores"] * meter.result["wall_s"]
    return {
        "thumbnail_sets_per_s": (args.images - first[1]) / (thumbnails_done_at - first[0]),
        "settled_sets_per_s": (args.images - first[1]) / (finished - first[0]),
        "worker_cpu_ms_per_image": 1000 * cpu_s / args.images,
        "cpu": meter.result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per measurement")
    parser.add_argument("--images", type=int, default=100, help="uploads per worker run")
    parser.add_argument("--jobs", type=int, default=50, help="tag jobs timed in this process")
    parser.add_argument("--repeat", type=int, default=1, help="worker runs per TAGGER")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--skip-worker", action="store_true", help="only the CPU per image")
    args = parser.parse_args(argv)

    per_image = cpu_per_image(args.rounds)
    keys = ("features_ms", "tag_ms", "placeholder_ms", "thumbnails_ms", "from_original_ms")
    print_table(
        ["image", "features", "tag", "placeholder", "thumbnails", "from original"],
        [[name, *(f"{row[key]:.2f}" for key in keys)] for name, row in per_image.items()],
    )
    worst = max(row["features_ms"] + row["tag_ms"] for row in per_image.values())
    print(f"basic tagger CPU per image: at most {worst:.2f} ms (target <= {CPU_TARGET_MS})")
    job = tag_job_cpu(args.jobs)
    photo_render = per_image["photo 12 MP (JPEG)"]["thumbnails_ms"]
    cpu_ratio = photo_render / (photo_render + job["tag_job_ms"] + worst)
    print(
        f"tag job, features handed over: {job['tag_job_ms']:.2f} ms CPU (SQLite); a 12 MP "
        f"photo's thumbnail set with tagging on: {cpu_ratio:.0%} of the rate without, in CPU"
    )
    results: dict[str, Any] = {
        "started_at": timestamp(),
        "machine": machine_info(),
        "cpu_per_image_ms": per_image,
        "worst_tagging_ms": worst,
        **job,
        "cpu_throughput_ratio": cpu_ratio,
        "pass": worst <= CPU_TARGET_MS and cpu_ratio >= THROUGHPUT_TARGET,
    }
    if not args.skip_worker:
        photo = photo_jpeg()
        # Alternating runs: other work on the machine then weighs on both alike.
        runs = [
            worker_run(tagger, photo, args)
            for _ in range(args.repeat)
            for tagger in ("none", "basic")
        ]
        rate = {
            tagger: statistics.median(
                run["thumbnail_sets_per_s"] for run in runs if run["tagger"] == tagger
            )
            for tagger in ("none", "basic")
        }
        ratio = rate["basic"] / rate["none"]
        print_table(
            ["TAGGER", "thumbnail sets/s", "settled sets/s", "worker CPU ms/image", "steal"],
            [
                [
                    run["tagger"],
                    f"{run['thumbnail_sets_per_s']:.1f}",
                    f"{run['settled_sets_per_s']:.1f}",
                    f"{run['worker_cpu_ms_per_image']:.1f}",
                    f"{run['cpu']['steal_cores']:.2f}",
                ]
                for run in runs
            ],
        )
        print(
            f"thumbnail rate with tagging on (medians): {ratio:.0%} of TAGGER=none (target >= 90%)"
        )
        results |= {"worker": runs, "throughput_ratio": ratio}
        results["pass"] = results["pass"] and ratio >= THROUGHPUT_TARGET
    print(f"results: {write_results('tagger', results)}")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
