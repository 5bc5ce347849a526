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

import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import cast

from PIL import Image, ImageCms, ImageMath

from app.images import apng
from app.images import metadata as container
from app.images.errors import InvalidFileFormat
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
# What Pillow raises on a damaged file: struct.error when a block is shorter than the
# fields it reads.
DAMAGED = (OSError, ValueError, SyntaxError, struct.error)
# Pillow composes every frame onto a full-size canvas: frames x canvas pixels decoded,
# and canvases of 4 bytes a pixel. Beyond either, the first frame is used.
ANIMATION_DECODE_BUDGET = 150_000_000  # ~70 frames of 1080p
ANIMATION_MAX_CANVAS = 4096 * 2160

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_VP8X_ALPHA = 0x10
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
        data = source if isinstance(source, bytes) else source.read_bytes()
        if data.startswith((b"GIF87a", b"GIF89a")):
            data = container.gif_first_stream(data)
        with Image.open(BytesIO(data), formats=formats) as image:
            shown = _shown_frames(image, data)
            try:
                return _make(image, shown, data)
            except DAMAGED:
                if len(shown) == 1:
                    raise
        # A later frame is damaged (validation decodes only a GIF's or WebP's first
        # frame): browsers show the frames that decode, we show the first one.
        with Image.open(BytesIO(data), formats=formats) as image:
            return _make(image, range(shown.start, shown.start + 1), data)
    except (*DAMAGED, Image.DecompressionBombError) as exc:
        raise ThumbnailError(f"cannot make thumbnails: {exc}") from exc
    except InvalidFileFormat as exc:  # our walkers refuse what they cannot read
        raise ThumbnailError(f"cannot make thumbnails: {exc.message}") from exc


def _shown_frames(image: Image.Image, data: bytes) -> range:
    """The indexes, in Pillow's numbering, of the frames a browser shows."""
    if image.format == "PNG":
        animation = apng.read_animation(data, container.png_chunks(data))
        if animation is None:
            return range(1)  # a still image, or an unusable acTL: the default image
        first = 1 if animation.hidden_default else 0
        return range(first, first + animation.frames)
    if image.format in ("GIF", "WEBP"):
        try:
            return range(int(getattr(image, "n_frames", 1)))
        except DAMAGED:
            # Counting reads every frame's control block; one Pillow cannot read leaves
            # the first frame, which validation decoded. Back to it: the count moved on.
            image.seek(0)
            return range(1)
    return range(1)  # JPEG; an MPO's further pictures are not shown


def _make(image: Image.Image, shown: range, data: bytes) -> list[Thumbnail]:
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    icc = image.info.get("icc_profile")
    large_box = THUMBNAIL_SIZES["large"]
    target = fit(*image.size, large_box)
    if len(shown) > 1 and _animate(image, len(shown), target):
        frames, durations = _animated_large(image, shown, target, icc, orientation)
        loop = int(image.info.get("loop", 0))
        return _encode_all(frames, durations, loop=loop if 0 <= loop <= _MAX_LOOPS else 0)
    if shown.start:
        image.seek(shown.start)
    if image.format == "JPEG":
        image.draft("RGB", target)  # the smallest DCT scale that still covers `target`
    if image.format in ("GIF", "WEBP"):
        large = _first_frame_alone(image, data, target)
    else:
        large = _resize(normal_mode(image), target)
    return _encode_all([_finish(large, icc, orientation)], None, loop=0)


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


def _first_frame_alone(image: Image.Image, data: bytes, target: tuple[int, int]) -> Image.Image:
    """The first frame of a GIF or animated WebP at `target` size, decoding only the
    frame's own pixels: the canvas around it is transparent, as in browsers."""
    if image.format == "GIF":
        found: tuple[bytes, tuple[int, int, int, int]] | None = container.gif_first_frame(data)
    else:
        found = container.webp_first_frame(data)
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


def normal_mode(image: Image.Image) -> Image.Image:
    """RGB, RGBA, L or CMYK: the modes that resize well and convert to WebP correctly."""
    mode = image.mode
    key = image.info.get("transparency") if mode in ("1", "L", "RGB", "I", "I;16") else None
    if key is not None:
        return _keyed(image, key)
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


def _keyed(image: Image.Image, key: object) -> Image.Image:
    """An image with a colour key (PNG `tRNS` for grey or RGB) as RGBA, the key transparent."""
    if image.mode in ("I", "I;16"):
        if not isinstance(key, int):
            return normal_mode(_without_key(image.copy()))  # a malformed key: ignore it
        wide = image.convert("I")
        mask = ImageMath.lambda_eval(lambda args: (args["im"] != key) * 255, im=wide)
        assert isinstance(mask, Image.Image)
        grey = normal_mode(_without_key(wide))
        result = grey.convert("RGBA")
        result.putalpha(mask.convert("L"))
        return result
    return image.convert("RGBA")  # Pillow applies an 8-bit grey or RGB key when converting


def _without_key(image: Image.Image) -> Image.Image:
    image.info.pop("transparency", None)
    return image


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
            # A transparent canvas, not the source's background (Pillow would make a GIF's
            # background index an opaque colour), as browsers show animations.
            "background": (0, 0, 0, 0),
            "save_all": True,
            "append_images": frames[1:],
            "duration": durations,
            "loop": loop,
        }
    # No exif=, xmp= or icc_profile=: Pillow writes none of them unless asked.
    frames[0].save(out, "WEBP", **options)
    data = out.getvalue()
    if len(frames) > 1 and data[12:16] == b"VP8X" and any(_see_through(f) for f in frames):
        # libwebp's animation encoder crops each frame to what is not transparent and may
        # then write no alpha at all, nor the VP8X alpha flag: decoders (Pillow, browsers)
        # would show the transparent canvas black. The flag says the canvas has alpha.
        data = data[:20] + bytes((data[20] | _VP8X_ALPHA,)) + data[21:]
    return data


def _see_through(frame: Image.Image) -> bool:
    if frame.mode != "RGBA":
        return False
    low, _ = cast(tuple[int, int], frame.getchannel("A").getextrema())
    return low < 255
