"""Thumbnails as pure functions over bytes: decode once, make the large size, derive the rest.

The pipeline, cheapest path first:

1. open with the allowed formats only, and read the EXIF orientation;
2. JPEG: ask libjpeg for the smallest DCT scale (1/8 .. 1/1) that still covers the
   large thumbnail, so a 12 MP photo is decoded at 1/4 size, never in full;
3. normalise awkward modes (1-bit, palette with transparency, LA, CMYK, 16-bit, I, F)
   to RGB or RGBA, so alpha survives and nothing is clipped to white;
4. resize to the large size, convert its colours to sRGB when the file carries an ICC
   profile (after the resize: 30x fewer pixels to transform), apply the orientation;
5. derive medium from large and small from medium, and encode each as WebP with no
   EXIF, XMP or ICC chunk at all.

Animated GIF and WebP keep their animation when it is small enough to be worth it (see
`ANIMATION_MAX_FRAMES` and `ANIMATION_PIXEL_BUDGET`); otherwise the first frame is used.
Nothing here touches global state except Pillow's bomb guard, set by the caller's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import cast

from PIL import Image, ImageCms, ImageSequence

from app.images.processing import align_bomb_guard

THUMBNAIL_SIZES: dict[str, int] = {"large": 800, "medium": 300, "small": 150}
CONTENT_TYPE = "image/webp"
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

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
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
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True, slots=True)
class Thumbnail:
    size: str  # "small" | "medium" | "large"
    data: bytes
    width: int
    height: int


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
    """The three WebP thumbnails of an image (its bytes, or its file), largest first.

    With `max_pixels` (the upload limit the image already passed), Pillow's process-wide
    bomb guard is raised to it when lower, so that no accepted image is refused here."""
    if max_pixels is not None:
        align_bomb_guard(max_pixels)
    formats = [_PIL_FORMATS[name] for name in allowed_formats if name in _PIL_FORMATS]
    try:
        opened = BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(opened, formats=formats) as image:
            return _make(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ThumbnailError(f"cannot make thumbnails: {exc}") from exc


def _make(image: Image.Image) -> list[Thumbnail]:
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    icc = image.info.get("icc_profile")
    large_box = THUMBNAIL_SIZES["large"]
    target = fit(*image.size, large_box)
    if getattr(image, "n_frames", 1) > 1 and _animate(image, target):
        frames, durations = _animated_large(image, target, icc, orientation)
        return _encode_all(frames, durations, loop=int(image.info.get("loop", 0)))
    if image.format == "JPEG":
        image.draft("RGB", target)  # the smallest DCT scale that still covers `target`
    large = _finish(_resize(normal_mode(image), target), icc, orientation)
    return _encode_all([large], None, loop=0)


def _animate(image: Image.Image, target: tuple[int, int]) -> bool:
    frames = int(getattr(image, "n_frames", 1))
    return frames <= ANIMATION_MAX_FRAMES and frames * target[0] * target[1] <= (
        ANIMATION_PIXEL_BUDGET
    )


def _animated_large(
    image: Image.Image, target: tuple[int, int], icc: bytes | None, orientation: int
) -> tuple[list[Image.Image], list[int]]:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        # Pillow composes each GIF/WebP frame onto the canvas, so every frame is whole.
        durations.append(int(frame.info.get("duration", 100)) or 100)
        frames.append(_finish(_resize(normal_mode(frame), target), icc, orientation))
    return frames, durations


def normal_mode(image: Image.Image) -> Image.Image:
    """RGB, RGBA, L or CMYK: the modes that resize well and convert to WebP correctly."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "P":
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode.startswith("I;16"):
        return _scale_to_8bit(image.convert("I"), 0, 65535)
    if mode in ("I", "F"):
        low, high = cast(tuple[float, float], image.getextrema())  # one band: (min, max)
        if low >= 0 and high <= (1.0 if mode == "F" else 255):
            return _scale_to_8bit(image, 0, 1.0 if mode == "F" else 255)
        if mode == "I" and low >= 0 and high <= 65535:
            return _scale_to_8bit(image, 0, 65535)  # 16-bit samples (PNG, TIFF-like)
        return _scale_to_8bit(image, low, high)
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def _scale_to_8bit(image: Image.Image, low: float, high: float) -> Image.Image:
    """Map [low, high] linearly onto 0..255 (16-bit data is not clipped to white)."""
    span = float(high - low) or 1.0
    return image.point(lambda value: (value - low) * (255 / span)).convert("L")


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image.copy()  # never the open file itself: it may be a frame of many
    # A box reduction by whole factors, then the filter over at most 2x: Image.thumbnail's
    # own recipe, without its draft() call (done above, once).
    return image.resize(size, RESAMPLE, reducing_gap=2.0)


def _finish(image: Image.Image, icc: bytes | None, orientation: int) -> Image.Image:
    """sRGB colours in RGB or RGBA, displayed the right way up."""
    image = _to_srgb(image, icc)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if not icc or image.mode not in ("RGB", "RGBA", "L", "CMYK"):
        return image
    alpha = image.getchannel("A") if image.mode == "RGBA" else None
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image.convert("RGB") if alpha is not None else image,
            source,
            _SRGB,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken or mismatched profile: keep the numbers as they are
    assert converted is not None
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _encode_all(
    large_frames: list[Image.Image], durations: list[int] | None, *, loop: int
) -> list[Thumbnail]:
    thumbnails = []
    frames = large_frames
    for size, box in THUMBNAIL_SIZES.items():
        target = fit(*frames[0].size, box)
        if target != frames[0].size:
            frames = [_resize(frame, target) for frame in frames]
        thumbnails.append(Thumbnail(size, _webp(frames, durations, loop), *target))
    return thumbnails


def _webp(frames: list[Image.Image], durations: list[int] | None, loop: int) -> bytes:
    out = BytesIO()
    options: dict[str, object] = {"quality": WEBP_QUALITY, "method": WEBP_METHOD}
    if durations is not None and len(frames) > 1:
        options |= {
            "save_all": True,
            "append_images": frames[1:],
            "duration": durations,
            "loop": loop,
        }
    # No exif=, xmp= or icc_profile=: Pillow writes none of them unless asked.
    frames[0].save(out, "WEBP", **options)
    return out.getvalue()
