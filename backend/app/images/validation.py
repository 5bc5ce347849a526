"""Upload validation: is this upload an image we accept, and what is it? Pure functions
over bytes, run in a CPU-pool worker process by `process_upload`.

`probe` refuses an upload in three stages, cheapest first: the magic bytes; then the
geometry that our own container walkers read from the headers, checked against the
limits before Pillow allocates anything; then a real but reduced decode by Pillow of
the first frame (JPEG at 1/8 scale). Later frames of an animation are not decoded, as
Pillow would compose every earlier frame to reach them, but the walk has checked that
all their data is present, and an APNG's later frames are inflated to check they are
whole (see `containers.apng`). The budgets apply to what is decoded (ADR 0017): the
canvas of the first frame (a GIF's logical screen, a WebP's VP8X canvas), JPEG scans,
and every APNG frame; a long GIF or WebP animation costs only its frame count. An
animated WebP's first frame is decoded alone, as libwebp would allocate its whole
canvas twice.

The file is walked once (`containers.parse`): that walk gives the geometry, the
orientation, an animated WebP's first frame and, in `process_upload`, the stripped
bytes. PNG chunks are checked as browsers check them: a bad CRC, or a critical chunk
the PNG spec does not define, refuses the file. An MPO (a JPEG followed by further
pictures) is its first picture: `frames` is 1, and stripping drops the rest (ADR 0017).

The camera details (`camera.camera_details`) are read from the EXIF Pillow found while
decoding, before stripping removes them; a malformed value only makes its field None.

Polyglots are accepted as the image format their magic bytes name, never as anything
else: the content type always comes from `formats.sniff`, and stripping drops any bytes
after the image's logical end (JPEG EOI, PNG IEND, GIF trailer, RIFF size).

Pillow reports some damage it tolerates (corrupt EXIF, a malformed MPO index) as
warnings. Where warnings are errors, as in the test suite, such files are refused;
elsewhere Pillow warns and the file is accepted if its pixels decode. Nothing here
touches global state except Pillow's bomb guard (`align_bomb_guard`), process-wide in
a worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image

from app.config import Settings
from app.errors import AppError
from app.images import containers, formats
from app.images.camera import NO_DETAILS, CameraDetails, camera_details
from app.images.containers import Container, Geometry
from app.images.containers.apng import check_frames
from app.images.errors import ImageTooLarge, InvalidFileFormat
from app.images.formats import Format

# Validation may decode this many times `max_pixels` in all: the first frame plus every
# frame of an APNG (inflated to check it is whole). GIF and WebP frames after the first
# are walked, not decoded, so only `max_frames` bounds them.
DECODED_PIXEL_FACTOR = 4
# libjpeg passes over every coefficient once per progressive scan, even when decoding at
# 1/8 scale: about 0.6 ns per pixel and scan. Encoders write up to 10 scans, so a full
# `max_pixels` progressive JPEG fits, while a hostile one repeating scans does not.
JPEG_SCAN_PIXEL_FACTOR = 12
PILLOW_DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS

_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    """What probing learnt: the format and the size as displayed (orientation applied)."""

    format: str  # a `formats.Format` name
    content_type: str
    width: int
    height: int
    frames: int
    orientation: int


@dataclass(frozen=True, slots=True)
class ProcessedUpload:
    info: ImageInfo
    sha256: str  # of the bytes to store
    size: int
    path: Path  # the bytes to store
    camera: CameraDetails = NO_DETAILS  # read before stripping; never location


@dataclass(frozen=True, slots=True)
class Limits:
    """The settings an upload is checked against (small, so cheap to send to a worker)."""

    allowed_formats: tuple[str, ...]
    max_pixels: int
    max_side: int
    max_frames: int
    strip_metadata: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            allowed_formats=settings.allowed_formats,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            max_frames=settings.max_frames,
            strip_metadata=settings.strip_metadata,
        )


@dataclass(frozen=True, slots=True)
class _Budget:
    max_pixels: int
    max_side: int
    max_frames: int

    def check(self, geometry: Geometry) -> None:
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


def align_bomb_guard(max_pixels: int) -> None:
    """Pillow's bomb guard, process-wide in a CPU worker, must not be stricter than the
    operator's limit, or it would refuse images the operator allowed."""
    Image.MAX_IMAGE_PIXELS = max(PILLOW_DEFAULT_MAX_PIXELS or 0, max_pixels)


def process_upload(path: Path, raw_sha256: str, limits: Limits) -> ProcessedUpload:
    """Validate the spooled file and strip location metadata in place when there is any."""
    # Our own check reads the limits from headers first.
    align_bomb_guard(limits.max_pixels)
    data = path.read_bytes()
    budget = _Budget(limits.max_pixels, limits.max_side, limits.max_frames)
    info, parsed, exif = _validate(data, limits.allowed_formats, budget)
    camera = camera_details(exif, parsed.orientation())  # before stripping removes them
    stored = parsed.stripped() if limits.strip_metadata else data
    if stored is data:
        return ProcessedUpload(info, raw_sha256, len(data), path, camera)
    path.write_bytes(stored)
    return ProcessedUpload(info, hashlib.sha256(stored).hexdigest(), len(stored), path, camera)


def probe(
    data: bytes,
    *,
    allowed_formats: Sequence[str],
    max_pixels: int,
    max_side: int,
    max_frames: int,
) -> ImageInfo:
    """Identify and validate an upload; raise InvalidFileFormat or ImageTooLarge."""
    return _validate(data, allowed_formats, _Budget(max_pixels, max_side, max_frames))[0]


def _validate(
    data: bytes, allowed_formats: Sequence[str], budget: _Budget
) -> tuple[ImageInfo, Container, object]:
    """What the upload is, its one walk (for stripping) and the EXIF Pillow found (for
    the camera details); or the reason to refuse it."""
    fmt = formats.sniff(data[: formats.SNIFF_BYTES])
    if fmt is None:
        raise InvalidFileFormat()
    if fmt.name not in allowed_formats:
        raise InvalidFileFormat(
            details={"format": fmt.name, "allowed_formats": list(allowed_formats)}
        )
    parsed = containers.parse(data, fmt)
    geometry = parsed.geometry()
    budget.check(geometry)
    if geometry.animation is not None:
        check_frames(data, geometry.animation)
    (width, height), exif = _decode_first_frame(data, fmt, parsed, geometry.frames, budget)
    orientation = parsed.orientation() or 1
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    info = ImageInfo(fmt.name, fmt.mime_type, width, height, geometry.frames, orientation)
    return info, parsed, exif


def _decode_first_frame(
    data: bytes, fmt: Format, parsed: Container, frames: int, budget: _Budget
) -> tuple[tuple[int, int], object]:
    """Pillow's size for `data`, once it has decoded the first frame, and its raw EXIF
    (a PNG's eXIf may follow the pixels: Pillow has it once they are decoded)."""
    alone = parsed.first_frame() if fmt is formats.WEBP else None
    try:
        with Image.open(BytesIO(data), formats=[fmt.pillow]) as image:
            size = image.size
            budget.check(Geometry(*size, frames))  # should Pillow read the header otherwise
            if fmt is formats.JPEG:
                image.draft(None, (1, 1))  # smallest DCT scale, yet every scan is still read
            if alone is None:
                image.load()
            exif = image.info.get("exif")
        if alone is not None:  # an animated WebP: its first frame, never its whole canvas
            with Image.open(BytesIO(alone[0]), formats=[fmt.pillow]) as frame:
                frame.load()
    except (AppError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge() from exc  # Pillow's own limit, when set below ours
    except Exception as exc:  # Pillow raises many types on hostile input; all mean "not valid"
        raise InvalidFileFormat() from exc
    return size, exif
