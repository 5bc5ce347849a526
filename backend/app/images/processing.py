"""The CPU-bound part of an upload: validate, strip metadata, hash. Runs in a worker process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from app.config import Settings
from app.images.imaging import ImageInfo, probe
from app.images.metadata import strip_metadata


@dataclass(frozen=True, slots=True)
class ProcessedUpload:
    info: ImageInfo
    sha256: str  # of the bytes to store
    size: int
    path: Path  # the bytes to store


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


PILLOW_DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS


def align_bomb_guard(max_pixels: int) -> None:
    """Pillow's bomb guard, process-wide in a CPU worker, must not be stricter than the
    operator's limit, or it would refuse images the operator allowed."""
    Image.MAX_IMAGE_PIXELS = max(PILLOW_DEFAULT_MAX_PIXELS or 0, max_pixels)


def process_upload(path: Path, raw_sha256: str, limits: Limits) -> ProcessedUpload:
    """Probe the spooled file and strip location metadata in place when there is any."""
    # Our own check reads the limits from headers first.
    align_bomb_guard(limits.max_pixels)
    data = path.read_bytes()
    info = probe(
        data,
        allowed_formats=limits.allowed_formats,
        max_pixels=limits.max_pixels,
        max_side=limits.max_side,
        max_frames=limits.max_frames,
    )
    stored = strip_metadata(data, info.format) if limits.strip_metadata else data
    if stored is data:
        return ProcessedUpload(info, raw_sha256, len(data), path)
    path.write_bytes(stored)
    return ProcessedUpload(info, hashlib.sha256(stored).hexdigest(), len(stored), path)
