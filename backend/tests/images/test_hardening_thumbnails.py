"""An image costs what its frames hold, not what its canvas declares.

Each case runs in a fresh process, where it alone sets the peak memory (VmHWM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = """
import json, sys
from app.images.validation import probe
from app.images.thumbnails import make_thumbnails
from tests.images import factories as f, realworld

def peak_kib():  # VmHWM, unlike ru_maxrss, starts afresh at exec
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

kind, side, frames, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == "gif":
    data = f.raw_gif((side, side))  # one 1x1 frame on a side x side logical screen
    if frames > 1:
        image = data[data.index(b","):-1]
        data = data[:data.index(b",")] + image * frames + b";"
else:
    data = realworld.webp_with_canvas((side, side), frames)  # 4x4 frames
before = peak_kib()
if step == "probe":
    info = probe(data, allowed_formats=(kind,), max_pixels=50_000_000, max_side=30_000,
                 max_frames=10_000)
    sizes = [[info.width, info.height]]
else:
    sizes = [[t.width, t.height] for t in make_thumbnails(data, (kind,), 50_000_000)]
json.dump({"size": len(data), "grown_kib": peak_kib() - before, "sizes": sizes}, sys.stdout)
"""


def in_fresh_process(kind: str, side: int, frames: int, step: str) -> dict[str, Any]:
    backend = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", SCRIPT, kind, str(side), str(frames), step]
    done = subprocess.run(command, cwd=backend, capture_output=True, check=True)
    return dict(json.loads(done.stdout))


pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM"
)


@pytest.mark.parametrize(
    ("kind", "frames"),
    [("gif", 1), ("gif", 3), ("webp", 2)],
    ids=["gif-still", "gif-animated", "webp-animated"],
)
def test_a_tiny_frame_on_a_huge_canvas_is_thumbnailed_for_the_cost_of_the_frame(
    kind: str, frames: int
) -> None:
    """The 35-byte GIF of a 7001x7001 screen around a 1x1 frame cost ~200 MB (Pillow's
    canvas, converted to RGBA and resized), an animated WebP of 4x4 frames on such a
    canvas ~750 MB (libwebp's two canvases and Pillow's copy). The first frame is
    decoded alone and placed on a thumbnail-sized canvas instead."""
    result = in_fresh_process(kind, 7001, frames, "thumbnails")

    assert result["size"] < 500
    assert result["sizes"] == [[800, 800], [300, 300], [150, 150]]
    assert result["grown_kib"] < 48 * 1024


@pytest.mark.parametrize("kind", ["gif", "webp"])
def test_validating_a_tiny_frame_on_a_huge_canvas_costs_the_frame(kind: str) -> None:
    result = in_fresh_process(kind, 7001, 2, "probe")

    assert result["sizes"] == [[7001, 7001]]
    assert result["grown_kib"] < 48 * 1024
