"""Format sniffing and probing of untrusted image bytes: pure functions, no I/O.

`probe` refuses an upload in three stages, cheapest first: the magic bytes; then the
geometry that our own container walkers read from the headers, checked against the
limits before Pillow allocates anything; then a real but reduced decode by Pillow of
the first frame (JPEG at 1/8 scale). Later frames of an animation are not decoded, as
Pillow would compose every earlier frame to reach them, but the walk has checked that
all their data is present, and an APNG's later frames are inflated to check they are
whole (see `apng`). The budgets apply to what is decoded (ADR 0017): the canvas of the
first frame (a GIF's logical screen, a WebP's VP8X canvas), JPEG scans, and every APNG
frame; a long GIF or WebP animation costs only its frame count. An animated WebP's
first frame is decoded alone, as libwebp would allocate its whole canvas twice. Nothing here touches
global state (Pillow's limits, warning filters), so it is safe in worker threads.

PNG chunks are checked as browsers check them: a bad CRC, or a critical chunk the PNG
spec does not define, refuses the file. An MPO (a JPEG followed by further pictures)
is its first picture: `frames` is 1, and stripping drops the rest (ADR 0017).

Polyglots are accepted as the image format their magic bytes name, never as anything
else: the content type always comes from `sniff_format`, and `strip_metadata` drops any
bytes after the image's logical end (JPEG EOI, PNG IEND, GIF trailer, RIFF size).

Pillow reports some damage it tolerates (corrupt EXIF, a malformed MPO index) as
warnings. Where warnings are errors, as in the test suite, such files are refused;
elsewhere Pillow warns and the file is accepted if its pixels decode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from app.errors import AppError
from app.images import apng
from app.images import metadata as container
from app.images.errors import ImageTooLarge, InvalidFileFormat

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
SNIFF_BYTES = 16  # enough bytes of the head for `sniff_format`
# Validation may decode this many times `max_pixels` in all: the first frame plus every
# frame of an APNG (inflated to check it is whole). GIF and WebP frames after the first
# are walked, not decoded, so only `max_frames` bounds them.
DECODED_PIXEL_FACTOR = 4
# libjpeg passes over every coefficient once per progressive scan, even when decoding at
# 1/8 scale: about 0.6 ns per pixel and scan. Encoders write up to 10 scans, so a full
# `max_pixels` progressive JPEG fits, while a hostile one repeating scans does not.
JPEG_SCAN_PIXEL_FACTOR = 12

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    """What probing learnt: the format and the size as displayed (orientation applied)."""

    format: str
    content_type: str
    width: int
    height: int
    frames: int
    orientation: int


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Dimensions declared by the container: the canvas every frame is composed onto."""

    width: int
    height: int
    frames: int
    scans: int = 1  # JPEG decoding passes
    decoded: int | None = None  # pixels validation decodes, when more than the canvas
    animation: apng.Animation | None = None  # an APNG's frames, to check before accepting


@dataclass(frozen=True, slots=True)
class _Limits:
    max_pixels: int
    max_side: int
    max_frames: int

    def check(self, geometry: _Geometry) -> None:
        """Raise ImageTooLarge when `geometry` exceeds a limit or one of the budgets."""
        width, height, frames = geometry.width, geometry.height, geometry.frames
        if width <= 0 or height <= 0 or frames <= 0:
            raise InvalidFileFormat("The image has no pixels")
        pixels = width * height
        if (
            max(width, height) > self.max_side
            or pixels > self.max_pixels
            or frames > self.max_frames
            or (geometry.decoded or pixels) > DECODED_PIXEL_FACTOR * self.max_pixels
            or pixels * geometry.scans > JPEG_SCAN_PIXEL_FACTOR * self.max_pixels
        ):
            image = {"width": width, "height": height, "frames": frames}
            raise ImageTooLarge(details=image | dataclasses.asdict(self))


def sniff_format(head: bytes) -> str | None:
    """The format named by the magic bytes at the start of `head`, None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(container.PNG_SIGNATURE):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def probe(
    data: bytes,
    *,
    allowed_formats: Sequence[str],
    max_pixels: int,
    max_side: int,
    max_frames: int,
) -> ImageInfo:
    """Identify and validate an upload; raise InvalidFileFormat or ImageTooLarge."""
    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt is None:
        raise InvalidFileFormat()
    if fmt not in allowed_formats:
        raise InvalidFileFormat(details={"format": fmt, "allowed_formats": list(allowed_formats)})
    limits = _Limits(max_pixels, max_side, max_frames)
    geometry = _GEOMETRY_READERS[fmt](data)
    limits.check(geometry)
    if geometry.animation is not None:
        apng.check_frames(data, geometry.animation)
    width, height = _decode_first_frame(data, fmt, geometry.frames, limits)
    orientation = container.exif_orientation(data, fmt) or 1
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(fmt, CONTENT_TYPES[fmt], width, height, geometry.frames, orientation)


def _decode_first_frame(data: bytes, fmt: str, frames: int, limits: _Limits) -> tuple[int, int]:
    """Pillow's size for `data`, once it has decoded the first frame."""
    alone = container.webp_first_frame(data) if fmt == "webp" else None
    try:
        with Image.open(BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as image:
            size = image.size
            limits.check(_Geometry(*size, frames))  # should Pillow read the header otherwise
            if fmt == "jpeg":
                image.draft(None, (1, 1))  # smallest DCT scale, yet every scan is still read
            if alone is None:
                image.load()
        if alone is not None:  # an animated WebP: its first frame, never its whole canvas
            with Image.open(BytesIO(alone[0]), formats=["WEBP"]) as frame:
                frame.load()
    except (AppError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge() from exc  # Pillow's own limit, when set below ours
    except Exception as exc:  # Pillow raises many types on hostile input; all mean "not valid"
        raise InvalidFileFormat() from exc
    return size


# --------------------------------------------------------------------------- geometry


def _u16le(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 2], "little")


def _jpeg_geometry(data: bytes) -> _Geometry:
    segments = container.jpeg_segments(data)
    scans = sum(segment.marker == container.SOS for segment in segments)
    for segment in segments:
        if segment.marker == container.SOS:
            break
        if segment.marker in container.SOF_MARKERS:
            frame = segment.payload(data)  # precision, height, width, components...
            if len(frame) < 6:
                break
            height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
            return _Geometry(width, height, 1, scans)
    raise InvalidFileFormat("The JPEG has no frame header")


def _png_geometry(data: bytes) -> _Geometry:
    chunks = container.png_chunks(data)
    container.check_png_chunks(data, chunks)
    header = chunks[0].payload(data)
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    animation = apng.read_animation(data, chunks)
    if animation is None:
        return _Geometry(width, height, 1)
    return _Geometry(
        width, height, animation.frames, decoded=animation.decoded_pixels, animation=animation
    )


def _gif_geometry(data: bytes) -> _Geometry:
    width, height, frames = _u16le(data, 6), _u16le(data, 8), 0
    for block in container.gif_blocks(data):
        if block.kind == container.GIF_IMAGE:
            left, top = _u16le(data, block.start + 1), _u16le(data, block.start + 3)
            width = max(width, left + _u16le(data, block.start + 5))
            height = max(height, top + _u16le(data, block.start + 7))
            frames += 1
    return _Geometry(width, height, frames)


def _webp_geometry(data: bytes) -> _Geometry:
    chunks = container.webp_chunks(data)
    first, payload = chunks[0].fourcc, chunks[0].payload(data)
    if first == b"VP8X" and len(payload) >= 10:
        width = 1 + int.from_bytes(payload[4:7], "little")
        height = 1 + int.from_bytes(payload[7:10], "little")
        frames = sum(c.fourcc == b"ANMF" for c in chunks)
        return _Geometry(width, height, max(frames, 1))
    if first == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        return _Geometry(_u16le(payload, 6) & 0x3FFF, _u16le(payload, 8) & 0x3FFF, 1)
    if first == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        return _Geometry((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1)
    raise InvalidFileFormat("The WebP has no valid image header")


_GEOMETRY_READERS: dict[str, Callable[[bytes], _Geometry]] = {
    "jpeg": _jpeg_geometry,
    "png": _png_geometry,
    "gif": _gif_geometry,
    "webp": _webp_geometry,
}
