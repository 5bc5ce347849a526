"""Probing uploads: what gets in, as what, and what is refused before any pixel is decoded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from app.images.containers.jpeg import jpeg_segments
from app.images.errors import ImageTooLarge, InvalidFileFormat
from app.images.formats import sniff
from app.images.validation import ImageInfo, probe
from tests.images import factories as f
from tests.images import realworld

ALL_FORMATS = ("jpeg", "png", "webp", "gif")
DEFAULTS: dict[str, Any] = {
    "allowed_formats": ALL_FORMATS,
    "max_pixels": 50_000_000,
    "max_side": 30_000,
    "max_frames": 1_000,
}


def probe_with(data: bytes, **limits: Any) -> ImageInfo:
    return probe(data, **{**DEFAULTS, **limits})


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "png"),
        (b"GIF87a\x01\x00", "gif"),
        (b"GIF89a\x01\x00", "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"\xff\xd8", None),
        (b"\x89PNG\r\n", None),
        (b"GIF90a", None),
        (b"BM6\x00\x00\x00", None),
        (b"II*\x00\x08\x00\x00\x00", None),
        (b"\x00\x00\x01\x00\x01\x00", None),
        (b"%PDF-1.7", None),
        (b"<svg xmlns=", None),
        (b"<!DOCTYPE html>", None),
        (b"", None),
    ],
)
def test_sniff_format_recognises_only_the_four_magic_numbers(
    head: bytes, expected: str | None
) -> None:
    sniffed = sniff(head)
    assert (sniffed and sniffed.name) == expected


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("make", "fmt", "size", "frames"),
    [
        (lambda: f.jpeg((64, 48)), "jpeg", (64, 48), 1),
        (lambda: f.progressive_jpeg((64, 48)), "jpeg", (64, 48), 1),
        (lambda: f.cmyk_jpeg((40, 30)), "jpeg", (30, 40), 1),  # its EXIF says orientation 6
        (lambda: f.png((64, 48), "RGBA"), "png", (64, 48), 1),
        (lambda: f.png((20, 10), "P"), "png", (20, 10), 1),
        (lambda: f.apng(3, (32, 24)), "png", (32, 24), 3),
        (lambda: f.webp((64, 48)), "webp", (64, 48), 1),
        (lambda: f.webp((64, 48), "RGBA", lossless=True), "webp", (64, 48), 1),
        (lambda: f.animated_webp(3, (32, 24)), "webp", (32, 24), 3),
        (lambda: f.animated_gif(3, (32, 24)), "gif", (32, 24), 3),
        (lambda: f.raw_gif((5, 4)), "gif", (5, 4), 1),
    ],
    ids=["jpeg", "progressive", "cmyk", "png", "png-palette", "apng", "webp", "webp-lossless",
         "webp-animated", "gif-animated", "gif-minimal"],
)  # fmt: skip
def test_each_format_probes_with_its_type_size_and_frames(
    make: Callable[[], bytes], fmt: str, size: tuple[int, int], frames: int
) -> None:
    info = probe_with(make())

    assert info.format == fmt
    assert info.content_type == f"image/{fmt}"
    assert (info.width, info.height) == size
    assert info.frames == frames


@pytest.mark.parametrize(
    "make",
    [f.jpeg_with_metadata, f.png_with_metadata, f.webp_with_metadata],
    ids=["jpeg", "png", "webp"],
)
def test_orientation_6_reports_the_displayed_size(make: Callable[..., bytes]) -> None:
    info = probe_with(make(orientation=6))  # stored 64x48, shown rotated

    assert (info.width, info.height, info.orientation) == (48, 64, 6)


@pytest.mark.parametrize(("orientation", "expected"), [(3, 3), (8, 8), (9, 1), (0, 1), (None, 1)])
def test_orientation_keeps_the_size_unless_it_swaps_sides(
    orientation: int | None, expected: int
) -> None:
    info = probe_with(f.jpeg((64, 48), exif=f.exif_bytes(orientation=orientation)))

    assert info.orientation == expected
    assert (info.width, info.height) == ((48, 64) if expected in (5, 6, 7, 8) else (64, 48))


def test_xmp_orientation_alone_is_ignored_like_browsers_do() -> None:
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'

    info = probe_with(f.jpeg((64, 48), xmp=xmp))

    assert (info.width, info.height, info.orientation) == (64, 48, 1)


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    "make",
    [f.jpeg, f.png, f.webp, lambda size: f.animated_gif(1, size)],
    ids=["jpeg", "png", "webp", "gif"],
)
def test_exactly_max_pixels_is_accepted_and_one_more_is_refused(
    make: Callable[[tuple[int, int]], bytes],
) -> None:
    image = make((64, 48))

    assert probe_with(image, max_pixels=64 * 48).width == 64
    with pytest.raises(ImageTooLarge):
        probe_with(image, max_pixels=64 * 48 - 1)


def test_each_side_is_capped() -> None:
    image = f.png((64, 48))

    assert probe_with(image, max_side=64).width == 64
    with pytest.raises(ImageTooLarge) as refused:
        probe_with(image, max_side=63)
    assert refused.value.details["width"] == 64


def test_frame_count_is_capped() -> None:
    assert probe_with(f.animated_gif(3), max_frames=3).frames == 3
    with pytest.raises(ImageTooLarge):
        probe_with(f.animated_gif(3), max_frames=2)
    with pytest.raises(ImageTooLarge):
        probe_with(f.apng(3), max_frames=2)
    with pytest.raises(ImageTooLarge):
        probe_with(f.animated_webp(3), max_frames=2)


def test_animations_are_budgeted_on_the_pixels_validation_decodes() -> None:
    """GIF frames after the first are walked, not decoded: only the frame cap bounds them.
    Every APNG frame is inflated to check it: they share four images' worth of pixels."""
    one_frame = 32 * 24

    assert probe_with(f.animated_gif(50), max_pixels=one_frame).frames == 50
    assert probe_with(f.apng(4), max_pixels=one_frame).frames == 4
    with pytest.raises(ImageTooLarge):
        probe_with(f.apng(5), max_pixels=one_frame)


def test_a_gif_frame_outside_the_logical_screen_counts_towards_the_size() -> None:
    gif = f.gif_with_screen((4, 4), frame=(400, 300))

    assert (probe_with(gif).width, probe_with(gif).height) == (400, 300)
    with pytest.raises(ImageTooLarge):
        probe_with(gif, max_pixels=100_000)


def test_a_jpeg_repeating_its_progressive_scans_is_refused() -> None:
    data = f.progressive_jpeg((64, 48))
    scans = [s for s in jpeg_segments(data) if s.marker == 0xDA]
    last = data[scans[-1].start : data.rindex(b"\xff\xd9")]  # the last scan and its data
    repeated = data[: data.rindex(b"\xff\xd9")] + last * 10 + b"\xff\xd9"

    assert probe_with(data, max_pixels=64 * 48).frames == 1
    with pytest.raises(ImageTooLarge):
        probe_with(repeated, max_pixels=64 * 48)


@pytest.mark.parametrize(
    "make",
    [
        f.png_bomb,
        lambda: f.jpeg_declaring(65_000, 65_000),
        f.gif_bomb,
        lambda: f.webp_declaring(16_000_000, 16_000_000),
        lambda: realworld.apng_bomb((5_000, 5_000), 9),
    ],
    ids=["png", "jpeg", "gif", "webp", "apng-budget"],
)
def test_decompression_bombs_are_refused_from_the_header(make: Callable[[], bytes]) -> None:
    with pytest.raises(ImageTooLarge):
        probe_with(make())


BOMBS_SCRIPT = """
import json, sys
from app.images.errors import ImageTooLarge
from app.images.validation import probe
from tests.images import factories as f

def peak_kib():  # VmHWM, unlike ru_maxrss, starts afresh at exec
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

limits = dict(allowed_formats=("jpeg", "png", "webp", "gif"), max_pixels=int(sys.argv[1]),
              max_side=30_000, max_frames=1_000)
bomb = f.raw_png(5_000, 5_000)  # 330 kB that decode to 75 MB, within Pillow's own limit
before = peak_kib()
try:
    probe(bomb, **limits)
    outcome = "accepted"
except ImageTooLarge:
    outcome = "refused"
after = peak_kib()
json.dump({"outcome": outcome, "grown_kib": after - before}, sys.stdout)
"""


def probe_bomb_in_fresh_process(max_pixels: int) -> dict[str, Any]:
    """Probe a PNG bomb where this test alone sets the peak memory."""
    backend = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", BOMBS_SCRIPT, str(max_pixels)]
    done = subprocess.run(command, cwd=backend, capture_output=True, check=True)
    return dict(json.loads(done.stdout))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_decompression_bombs_are_refused_without_allocating_their_pixels() -> None:
    refused = probe_bomb_in_fresh_process(max_pixels=1_000_000)
    decoded = probe_bomb_in_fresh_process(max_pixels=25_000_000)  # proves the measure works

    assert refused["outcome"] == "refused"
    assert refused["grown_kib"] < 10 * 1024
    assert decoded["outcome"] == "accepted"
    assert decoded["grown_kib"] > 70 * 1024


def test_a_gif_hiding_megabytes_in_tiny_sub_blocks_is_refused() -> None:
    with pytest.raises(InvalidFileFormat):
        probe_with(f.gif_with_tiny_sub_blocks(1_000_000))


def test_a_png_made_of_countless_tiny_chunks_is_refused() -> None:
    noise = f.png_chunk(b"abCd", b"") * 20_000

    with pytest.raises(InvalidFileFormat):
        probe_with(f.raw_png(8, 8, extra=noise))


@pytest.mark.parametrize("runs", [1, 2_000], ids=["one-run", "many-runs"])
def test_a_jpeg_with_lots_of_junk_between_markers_is_refused(runs: int) -> None:
    comment = b"\x00" * (100_000 // runs) + b"\xff\xfe\x00\x03c"  # junk, then a comment

    with pytest.raises(InvalidFileFormat):
        probe_with(f.jpeg()[:2] + comment * runs + f.jpeg()[2:])


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    "data",
    [f.SVG, f.HTML, f.PDF, b"", b"hello", b"\xff\xd8\xff"],
    ids=["svg", "html", "pdf", "empty", "text", "jpeg-magic-only"],
)
def test_non_images_are_refused_whatever_they_are_called(data: bytes) -> None:
    with pytest.raises(InvalidFileFormat):
        probe_with(data)  # the name ("cat.png") never reaches probing: only bytes count


@pytest.mark.parametrize("make", [f.bmp, f.tiff, f.ico], ids=["bmp", "tiff", "ico"])
def test_images_of_other_formats_are_refused(make: Callable[[], bytes]) -> None:
    with pytest.raises(InvalidFileFormat):
        probe_with(make())


def test_a_format_left_out_of_allowed_formats_is_refused() -> None:
    with pytest.raises(InvalidFileFormat) as refused:
        probe_with(f.animated_gif(), allowed_formats=("jpeg", "png"))

    assert refused.value.details == {"format": "gif", "allowed_formats": ["jpeg", "png"]}


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_random_bytes_after_a_valid_magic_are_refused(fmt: str) -> None:
    with pytest.raises(InvalidFileFormat):
        probe_with(f.random_after_magic(f.MAGICS[fmt]))


SAMPLES: dict[str, Callable[[], bytes]] = {
    "jpeg": f.jpeg_with_metadata,
    "progressive": f.progressive_jpeg,
    "png": f.png_with_metadata,
    "apng": f.apng,
    "webp": f.webp_with_metadata,
    "webp-animated": f.animated_webp,
    "gif": f.animated_gif_with_comment,
}


@pytest.mark.parametrize("make", SAMPLES.values(), ids=SAMPLES.keys())
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_files_are_refused(make: Callable[[], bytes], keep: float) -> None:
    data = make()

    with pytest.raises(InvalidFileFormat):
        probe_with(data[: int(len(data) * keep)])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("make", SAMPLES.values(), ids=SAMPLES.keys())
def test_files_missing_their_last_bytes_are_refused(make: Callable[[], bytes]) -> None:
    with pytest.raises(InvalidFileFormat):
        probe_with(make()[:-3])


def test_a_png_without_pixels_is_refused() -> None:
    with pytest.raises(InvalidFileFormat):
        probe_with(f.raw_png(0, 10, idat=b""))


def test_an_apng_declaring_zero_frames_is_a_still_image() -> None:
    """Browsers show the default image of an APNG whose acTL is unusable."""
    with pytest.warns(UserWarning, match="Invalid APNG"):  # Pillow falls back to it too
        info = probe_with(f.apng_declaring(0, (8, 8)))

    assert (info.width, info.height, info.frames) == (8, 8, 1)


# --------------------------------------------------------------------------- polyglots


def test_a_gif_that_is_also_javascript_is_only_ever_a_gif() -> None:
    info = probe_with(f.gif_js_polyglot())

    assert (info.format, info.content_type, info.frames) == ("gif", "image/gif", 1)


@pytest.mark.parametrize(
    ("make", "tail"),
    [
        (f.png, b"<html><script>alert(1)</script></html>"),
        (f.jpeg, b"PK\x03\x04" + bytes(26) + b"evil.js"),
        (f.webp, b"<svg onload=alert(1)>"),
    ],
    ids=["png+html", "jpeg+zip", "webp+svg"],
)
def test_trailing_payloads_leave_the_file_what_its_magic_says(
    make: Callable[[], bytes], tail: bytes
) -> None:
    data = make()

    assert probe_with(data + tail) == probe_with(data)


def test_probing_does_not_touch_pillows_global_limits() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)

    with pytest.raises(ImageTooLarge):
        probe_with(f.png_bomb())
    probe_with(f.jpeg())

    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
