"""Each upload is walked once: geometry, orientation, first frame and stripping share it."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from app.images.containers import gif, jpeg, png, webp
from app.images.thumbnails import make_thumbnails
from app.images.validation import Limits, process_upload
from tests.images import factories as f

WALKERS = {
    walker.__code__: walker.__name__
    for walker in (jpeg.jpeg_segments, png.png_chunks, gif.gif_blocks, webp.webp_chunks)
}
LIMITS = Limits(("jpeg", "png", "gif", "webp"), 50_000_000, 20_000, 10_000, strip_metadata=True)


@contextmanager
def walks() -> Iterator[Counter[str]]:
    """Counts the container walks made inside the block (by watching calls, not faking)."""
    counted: Counter[str] = Counter()

    def watch(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code in WALKERS:
            counted[WALKERS[frame.f_code]] += 1

    sys.setprofile(watch)
    try:
        yield counted
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize(
    ("make", "walker"),
    [
        (f.jpeg_with_metadata, "jpeg_segments"),
        (f.png_with_metadata, "png_chunks"),
        (f.apng, "png_chunks"),
        (f.animated_gif_with_comment, "gif_blocks"),
        (f.webp_with_metadata, "webp_chunks"),
        (lambda: f.animated_webp(exif=f.exif_bytes()), "webp_chunks"),
    ],
)
def test_an_upload_is_walked_once(make: Callable[[], bytes], walker: str, tmp_path: Path) -> None:
    data = make()
    path = tmp_path / "upload"
    path.write_bytes(data)
    with walks() as counted:
        processed = process_upload(path, hashlib.sha256(data).hexdigest(), LIMITS)
    assert processed.size < len(data) or make is f.apng  # stripped by that same walk
    assert counted == {walker: 1}


def test_a_gif_is_walked_once_for_its_thumbnails() -> None:
    data = f.gif_with_screen((400, 300), (20, 10))  # its first frame is decoded alone
    with walks() as counted:
        make_thumbnails(data, ("gif",))
    assert counted == {"gif_blocks": 1}
