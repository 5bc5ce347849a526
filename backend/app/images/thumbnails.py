"""Thumbnails as pure functions over bytes: decode once, make the large size, derive the rest.

The pipeline, cheapest path first:

1. open with the allowed formats only, and read the EXIF orientation;
2. JPEG: ask libjpeg for the smallest DCT scale (1/8 .. 1/1) that still covers the
   large thumbnail, so a 12 MP photo is decoded at 1/4 size, never in full;
3. normalise awkward modes (1-bit, palette with transparency, LA, CMYK, 16-bit, I, F)
   to RGB or RGBA, so alpha survives and nothing is clipped to white (`pixels`);
4. resize to the large size, convert its colours to sRGB when the file carries an ICC
   profile (after the resize: 30x fewer pixels to transform), apply the orientation;
5. derive medium from large and small from medium, and encode each as WebP with no
   EXIF, XMP or ICC chunk at all;
6. on the way, while the pixels are still decoded and lossless: the placeholder (a
   ThumbHash of the small size, contract section 10) and the features the basic tagger
   reads (`app.tagging.features`), both of the first frame.

Animated GIF, PNG and WebP keep their animation when it is small enough to be worth it
(see `ANIMATION_MAX_FRAMES`, `ANIMATION_PIXEL_BUDGET` and `ANIMATION_DECODE_BUDGET`);
otherwise the first frame is used. The frames are those a browser shows (ADR 0017): an
APNG's default image only when it is part of the animation (or when the animation is
unusable: then it is a still image), a GIF's first stream only, an MPO's first picture
only. Transparency is applied whatever its form (alpha, a `tRNS` colour key, a palette
index). The first frame of a GIF or an animated WebP, when smaller than its canvas, is
decoded alone and placed on a thumbnail-sized canvas, so a tiny frame on a huge canvas
never costs the huge canvas.
Nothing here touches global state except Pillow's bomb guard, set by the caller's limit.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import cast

from PIL import Image
from thash import rgba_to_thumb_hash

from app.images import containers, formats
from app.images.containers.gif import Gif
from app.images.containers.png import Png
from app.images.containers.webp import VP8X_ALPHA
from app.images.errors import InvalidFileFormat
from app.images.pixels import normal_mode, to_srgb
from app.images.validation import align_bomb_guard
from app.tagging.features import ImageFeatures, features_of

THUMBNAIL_SIZES: dict[str, int] = {"large": 800, "medium": 300, "small": 150}
CONTENT_TYPE = formats.WEBP.mime_type
WEBP_QUALITY = 80
# libwebp's effort, 0 (fast) .. 6 (small). 4 is its default; 2 costs a third less CPU for
# files a few percent larger, which is the better trade for thumbnails made at upload.
WEBP_METHOD = 2
# Pillow's filters antialias when they shrink (their support grows with the factor), so
# bilinear after a draft decode or a box reduction is a proper triangle filter: side by
# side with bicubic at 800 px no difference shows, and it costs 40% less (bicubic 10 ms,
# Lanczos 13 ms for the 12 MP photo's large size), which a worker's 20 sets/s needs.
RESAMPLE = Image.Resampling.BILINEAR
ANIMATION_MAX_FRAMES = 120
# Frames x pixels of the large animated thumbnail; beyond it the first frame is used.
ANIMATION_PIXEL_BUDGET = 24_000_000
# What Pillow raises on a damaged file: struct.error when a block is shorter than the
# fields it reads.
DAMAGED = (OSError, ValueError, SyntaxError, struct.error)
# Pillow composes every frame onto a full-size canvas: frames x canvas pixels decoded,
# and canvases of 4 bytes a pixel. Beyond either, the first frame is used.
ANIMATION_DECODE_BUDGET = 150_000_000  # ~70 frames of 1080p
ANIMATION_MAX_CANVAS = 4096 * 2160
# ThumbHash keeps at most 7 cosine terms a side, so 24 samples a side carry what it keeps:
# decoded, its hash of a 24 px image matches the one of a 100 px image (its maximum) to
# within 1% on photos and screenshots, and the pure-Python encoder costs ~3 ms there
# against ~35 ms at 100 px (bench/tagger.py measures it with every thumbnail set).
PLACEHOLDER_BOX = 24

_MAX_LOOPS = 65_535  # WebP's loop count is 16 bits (an APNG's is 32): beyond, forever
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class Thumbnail:
    size: str  # "small" | "medium" | "large"
    data: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one decode of an image yields: its thumbnails, largest first, its placeholder
    (a ThumbHash, base64) and the pixel features of its first frame."""

    thumbnails: list[Thumbnail]
    placeholder: str
    features: ImageFeatures


class ThumbnailError(Exception):
    """The image could not be turned into thumbnails (damaged or not an allowed format)."""


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    """The size of (width, height) scaled to fit a box x box square, never upscaled."""
    if width <= box and height <= box:
        return width, height
    scale = box / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_thumbnails(
    source: bytes | Path, allowed_formats: tuple[str, ...], max_pixels: int | None = None
) -> list[Thumbnail]:
    """The three WebP thumbnails of an image (its bytes, or its file), largest first."""
    return render(source, allowed_formats, max_pixels).thumbnails


def render(
    source: bytes | Path, allowed_formats: tuple[str, ...], max_pixels: int | None = None
) -> Rendered:
    """The thumbnails, placeholder and features of an image (its bytes, or its file).

    With `max_pixels` (the upload limit the image already passed), Pillow's process-wide
    bomb guard is raised to it when lower, so that no accepted image is refused here."""
    pillow_names = _prepare(allowed_formats, max_pixels)
    try:
        data, gif = _read(source)
        with Image.open(BytesIO(data), formats=pillow_names) as image:
            shown = _shown_frames(image, data)
            try:
                return _make(image, shown, data, gif)
            except DAMAGED:
                if len(shown) == 1:
                    raise
        # A later frame is damaged (validation decodes only a GIF's or WebP's first
        # frame): browsers show the frames that decode, we show the first one.
        with Image.open(BytesIO(data), formats=pillow_names) as image:
            return _make(image, range(shown.start, shown.start + 1), data, gif)
    except (*DAMAGED, Image.DecompressionBombError) as exc:
        raise ThumbnailError(f"cannot make thumbnails: {exc}") from exc
    except InvalidFileFormat as exc:  # our walkers refuse what they cannot read
        raise ThumbnailError(f"cannot make thumbnails: {exc.message}") from exc


def _prepare(allowed_formats: tuple[str, ...], max_pixels: int | None) -> list[str]:
    """Pillow's names of the allowed formats, its bomb guard aligned with `max_pixels`."""
    if max_pixels is not None:
        align_bomb_guard(max_pixels)
    return [fmt.pillow for fmt in formats.FORMATS if fmt.name in allowed_formats]


def _read(source: bytes | Path) -> tuple[bytes, Gif | None]:
    """The bytes to decode (a GIF's first stream only) and the GIF's one walk, if any."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    gif = Gif(data) if formats.GIF.matches(data) else None  # its one walk
    return (gif.first_stream() if gif is not None else data), gif


def _shown_frames(image: Image.Image, data: bytes) -> range:
    """The indexes, in Pillow's numbering, of the frames a browser shows."""
    fmt = formats.by_pillow_name(str(image.format))
    if fmt is formats.PNG:
        animation = Png(data).animation()
        if animation is None:
            return range(1)  # a still image, or an unusable acTL: the default image
        first = 1 if animation.hidden_default else 0
        return range(first, first + animation.frames)
    if fmt in (formats.GIF, formats.WEBP):
        try:
            return range(int(getattr(image, "n_frames", 1)))
        except DAMAGED:
            # Counting reads every frame's control block; one Pillow cannot read leaves
            # the first frame, which validation decoded. Back to it: the count moved on.
            image.seek(0)
            return range(1)
    return range(1)  # JPEG; an MPO's further pictures are not shown


def displayed(
    source: bytes | Path, allowed_formats: tuple[str, ...], max_pixels: int | None = None
) -> Image.Image:
    """The image as displayed (its first shown frame) at the large thumbnail's size, in
    sRGB, RGB or RGBA: what the tag job reads when no thumbnail job handed it over."""
    pillow_names = _prepare(allowed_formats, max_pixels)
    try:
        data, gif = _read(source)
        with Image.open(BytesIO(data), formats=pillow_names) as image:
            shown = _shown_frames(image, data)
            target = fit(*image.size, THUMBNAIL_SIZES["large"])
            return _still(image, shown, data, gif, target)
    except (*DAMAGED, Image.DecompressionBombError) as exc:
        raise ThumbnailError(f"cannot read the image: {exc}") from exc
    except InvalidFileFormat as exc:
        raise ThumbnailError(f"cannot read the image: {exc.message}") from exc


def _make(image: Image.Image, shown: range, data: bytes, gif: Gif | None) -> Rendered:
    target = fit(*image.size, THUMBNAIL_SIZES["large"])
    if len(shown) > 1 and _animate(image, len(shown), target):
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
        icc = image.info.get("icc_profile")
        frames, durations = _animated_large(image, shown, target, icc, orientation)
        loop = int(image.info.get("loop", 0))
        return _encode_all(frames, durations, loop=loop if 0 <= loop <= _MAX_LOOPS else 0)
    return _encode_all([_still(image, shown, data, gif, target)], None, loop=0)


def _still(
    image: Image.Image, shown: range, data: bytes, gif: Gif | None, target: tuple[int, int]
) -> Image.Image:
    """The first shown frame at `target` size, finished (sRGB, the right way up)."""
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    icc = image.info.get("icc_profile")
    if shown.start:
        image.seek(shown.start)
    fmt = formats.by_pillow_name(str(image.format))
    if fmt is formats.JPEG:
        image.draft("RGB", target)  # the smallest DCT scale that still covers `target`
    if fmt in (formats.GIF, formats.WEBP):
        walked = gif if gif is not None else containers.parse(data, formats.WEBP)
        large = _first_frame_alone(image, walked, target)
    else:
        large = _resize(normal_mode(image), target)
    return _finish(large, icc, orientation)


def _animate(image: Image.Image, frames: int, target: tuple[int, int]) -> bool:
    canvas = image.size[0] * image.size[1]
    return (
        frames <= ANIMATION_MAX_FRAMES
        and frames * target[0] * target[1] <= ANIMATION_PIXEL_BUDGET
        and canvas <= ANIMATION_MAX_CANVAS
        and frames * canvas <= ANIMATION_DECODE_BUDGET
    )


def _animated_large(
    image: Image.Image,
    shown: range,
    target: tuple[int, int],
    icc: bytes | None,
    orientation: int,
) -> tuple[list[Image.Image], list[int]]:
    frames, durations = [], []
    for index in shown:
        image.seek(index)
        # Pillow composes each frame onto the canvas, so every frame is whole.
        durations.append(int(image.info.get("duration", 100)) or 100)
        frames.append(_finish(_resize(normal_mode(image), target), icc, orientation))
    return frames, durations


def _first_frame_alone(
    image: Image.Image, walked: containers.Container, target: tuple[int, int]
) -> Image.Image:
    """The first frame of a GIF or animated WebP at `target` size, decoding only the
    frame's own pixels: the canvas around it is transparent, as in browsers."""
    found = walked.first_frame()
    canvas_width, canvas_height = image.size
    if found is None or found[1] == (0, 0, canvas_width, canvas_height):
        return _resize(normal_mode(image), target)
    frame, (left, top, width, height) = found
    with Image.open(BytesIO(frame), formats=[str(image.format)]) as alone:
        pixels = normal_mode(alone).convert("RGBA")
    scale_x, scale_y = target[0] / canvas_width, target[1] / canvas_height
    box = (round(left * scale_x), round(top * scale_y))
    size = (max(1, round(width * scale_x)), max(1, round(height * scale_y)))
    canvas = Image.new("RGBA", target, (0, 0, 0, 0))
    canvas.paste(_resize(pixels, size), box)
    return canvas


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image.copy()  # never the open file itself: it may be a frame of many
    # A box reduction by whole factors, then the filter over at most 2x: Image.thumbnail's
    # own recipe, without its draft() call (done above, once).
    return image.resize(size, RESAMPLE, reducing_gap=2.0)


def _finish(image: Image.Image, icc: bytes | None, orientation: int) -> Image.Image:
    """sRGB colours in RGB or RGBA, displayed the right way up."""
    image = to_srgb(image, icc)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _encode_all(
    large_frames: list[Image.Image], durations: list[int] | None, *, loop: int
) -> Rendered:
    thumbnails = []
    frames = large_frames
    for size, box in THUMBNAIL_SIZES.items():
        target = fit(*frames[0].size, box)
        if target != frames[0].size:
            frames = [_resize(frame, target) for frame in frames]
        thumbnails.append(Thumbnail(size, _webp(frames, durations, loop), *target))
    # `frames` now holds the smallest size: the placeholder needs no more than that.
    return Rendered(thumbnails, placeholder(frames[0]), features_of(large_frames[0]))


def placeholder(image: Image.Image) -> str:
    """The ThumbHash of an RGB or RGBA image, base64 (as contract section 10 serves it)."""
    small = _resize(image, fit(*image.size, PLACEHOLDER_BOX)).convert("RGBA")
    digest = rgba_to_thumb_hash(small.width, small.height, list(small.tobytes()))
    return base64.b64encode(bytes(digest)).decode("ascii")


def _webp(frames: list[Image.Image], durations: list[int] | None, loop: int) -> bytes:
    out = BytesIO()
    options: dict[str, object] = {"quality": WEBP_QUALITY, "method": WEBP_METHOD}
    if durations is not None and len(frames) > 1:
        options |= {
            # A transparent canvas, not the source's background (Pillow would make a GIF's
            # background index an opaque colour), as browsers show animations.
            "background": (0, 0, 0, 0),
            "save_all": True,
            "append_images": frames[1:],
            "duration": durations,
            "loop": loop,
        }
    # No exif=, xmp= or icc_profile=: Pillow writes none of them unless asked.
    frames[0].save(out, formats.WEBP.pillow, **options)
    data = out.getvalue()
    if len(frames) > 1 and data[12:16] == b"VP8X" and any(_see_through(f) for f in frames):
        # libwebp's animation encoder crops each frame to what is not transparent and may
        # then write no alpha at all, nor the VP8X alpha flag: decoders (Pillow, browsers)
        # would show the transparent canvas black. The flag says the canvas has alpha.
        data = data[:20] + bytes((data[20] | VP8X_ALPHA,)) + data[21:]
    return data


def _see_through(frame: Image.Image) -> bool:
    if frame.mode != "RGBA":
        return False
    low, _ = cast(tuple[int, int], frame.getchannel("A").getextrema())
    return low < 255
