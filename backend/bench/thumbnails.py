"""Thumbnail cost: our pipeline against the best plain-Pillow pipeline, and sets per second.

For a 12-megapixel photo-like JPEG, in one run, interleaved round by round:

- `ours`: `app.images.thumbnails.make_thumbnails` (three WebP thumbnails);
- `best_pillow_webp`: the best Pillow pipeline for the same output: draft mode at the
  smallest DCT scale covering the 800 px thumbnail, `thumbnail()` to 800, then 300 and 150 derived
  from the previous size, each saved as WebP with the same filter, quality and effort as ours;
- `independent_webp`: three independent `thumbnail()` calls on a fresh decode each;
- `best_pillow_jpeg`: the draft cascade saving JPEG, for comparison with the figure in
  the issue (about 47 ms).

Target: `ours` <= 1.25 x `best_pillow_webp` (medians). Then throughput: the `CpuPool`
the worker uses, with as many processes as cores, runs `make_thumbnails` on the same
photo, always one task per process queued ahead, for `--seconds`; target >= 20 sets/s.

    uv run python -m bench.thumbnails [--rounds 30] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from app.images.thumbnails import (
    RESAMPLE,
    THUMBNAIL_SIZES,
    WEBP_METHOD,
    WEBP_QUALITY,
    make_thumbnails,
)
from app.infra.cpu import CpuPool
from bench.common import CpuMeter, machine_info, print_table, timestamp, write_results

FORMATS = ("jpeg", "png", "webp", "gif")
RATIO_TARGET = 1.25
SETS_TARGET = 20.0


def photo_jpeg(width: int = 4000, height: int = 3000, seed: int = 7) -> bytes:
    """A photo-like JPEG: smooth gradients, shapes with soft edges, and sensor-like grain."""
    base = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    blue = Image.linear_gradient("L").rotate(90).resize((width, height))
    image = Image.merge("RGB", (base, radial, blue))
    draw = ImageDraw.Draw(image)
    rng = __import__("random").Random(seed)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(50, 600)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(3))
    grain = Image.merge("RGB", [Image.effect_noise((width, height), 40) for _ in range(3)])
    image = Image.blend(image, grain, 0.25)
    out = BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _save(image: Image.Image, fmt: str) -> bytes:
    out = BytesIO()
    if fmt == "WEBP":
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    else:
        image.save(out, "JPEG", quality=WEBP_QUALITY)
    return out.getvalue()


def best_pillow(data: bytes, fmt: str) -> list[bytes]:
    """The draft-mode cascade in plain Pillow: the reference we must stay close to."""
    outputs = []
    with Image.open(BytesIO(data)) as image:
        box = THUMBNAIL_SIZES["large"]
        scale = box / max(image.size)
        image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
        current: Image.Image = image
        for box in THUMBNAIL_SIZES.values():
            current = current.copy() if current is not image else image
            current.thumbnail((box, box), RESAMPLE)
            outputs.append(_save(current, fmt))
    return outputs


def independent(data: bytes, fmt: str) -> list[bytes]:
    outputs = []
    for box in THUMBNAIL_SIZES.values():
        with Image.open(BytesIO(data)) as image:
            image.thumbnail((box, box), RESAMPLE)
            outputs.append(_save(image, fmt))
    return outputs


def ours(data: bytes) -> list[bytes]:
    return [thumb.data for thumb in make_thumbnails(data, FORMATS)]


def time_pipelines(data: bytes, rounds: int) -> dict[str, dict[str, float]]:
    pipelines: dict[str, Callable[[], list[bytes]]] = {
        "ours": lambda: ours(data),
        "best_pillow_webp": lambda: best_pillow(data, "WEBP"),
        "independent_webp": lambda: independent(data, "WEBP"),
        "best_pillow_jpeg": lambda: best_pillow(data, "JPEG"),
    }
    for run in pipelines.values():  # warm caches and lazy imports
        run()
    samples: dict[str, list[float]] = {name: [] for name in pipelines}
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for name, run in pipelines.items():
            started = time.perf_counter()
            outputs = run()
            samples[name].append((time.perf_counter() - started) * 1000)
            sizes[name] = sum(len(out) for out in outputs)
    return {
        name: {
            "median_ms": statistics.median(values),
            "p90_ms": sorted(values)[int(len(values) * 0.9) - 1],
            "min_ms": min(values),
            "output_bytes": sizes[name],
        }
        for name, values in samples.items()
    }


async def throughput(data: bytes, seconds: float, workers: int) -> dict[str, Any]:
    pool = CpuPool(workers)
    await pool.start()
    done = 0
    deadline = time.perf_counter() + seconds

    async def lane() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await pool.run(make_thumbnails, data, FORMATS)
            done += 1

    try:
        await pool.run(make_thumbnails, data, FORMATS)  # warm every import in a worker
        started = time.perf_counter()
        with CpuMeter(os.getpid()) as meter:
            # Two lanes per process: each worker always has the next set waiting.
            await asyncio.gather(*(lane() for _ in range(workers * 2)))
        elapsed = time.perf_counter() - started
        cpu = meter.result
    finally:
        pool.close()
    return {
        "workers": workers,
        "sets": done,
        "seconds": elapsed,
        "sets_per_s": done / elapsed,
        **cpu,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per pipeline")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = photo_jpeg()
    with Image.open(BytesIO(data)) as probe:
        size = probe.size
    print(f"photo: {size[0]}x{size[1]} JPEG, {len(data) / 1e6:.2f} MB")
    timings = time_pipelines(data, args.rounds)
    ratio = timings["ours"]["median_ms"] / timings["best_pillow_webp"]["median_ms"]
    rows = [
        [
            name,
            f"{t['median_ms']:.1f}",
            f"{t['p90_ms']:.1f}",
            f"{t['min_ms']:.1f}",
            f"{t['output_bytes'] / 1000:.1f}",
        ]
        for name, t in timings.items()
    ]
    print_table(["pipeline (3 sizes)", "median ms", "p90 ms", "min ms", "output KB"], rows)
    print(f"ours / best_pillow_webp = {ratio:.2f} (target <= {RATIO_TARGET})")
    rate = asyncio.run(throughput(data, args.seconds, args.workers))
    print(
        f"throughput: {rate['sets_per_s']:.1f} sets/s with {rate['workers']} processes "
        f"(target >= {SETS_TARGET}); steal {rate.get('steal_cores', 0):.2f} cores"
    )
    results = {
        "started_at": timestamp(),
        "machine": machine_info(),
        "photo": {"width": size[0], "height": size[1], "bytes": len(data)},
        "timings": timings,
        "ratio": ratio,
        "throughput": rate,
        "pass": ratio <= RATIO_TARGET and rate["sets_per_s"] >= SETS_TARGET,
    }
    print(f"results: {write_results('thumbnails', results)}")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
