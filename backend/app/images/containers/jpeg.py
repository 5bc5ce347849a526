"""JPEG: marker segments and scans, walked once for geometry, orientation and stripping."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from app.images.containers.base import Geometry, Placement, malformed
from app.images.containers.exif import EXIF_HEADER, reduced_tiff, tiff_orientation
from app.images.errors import InvalidFileFormat

MAX_JPEG_SEGMENTS = 4_096  # 255 ICC chunks, extended XMP and many scans fit
MAX_JPEG_SCANS = 256  # see validation.JPEG_SCAN_PIXEL_FACTOR for the budget that matters
MAX_JPEG_JUNK = 4_096  # stray bytes between markers; Pillow skips them one at a time

ENTROPY = -1  # pseudo-marker for entropy-coded data between segments
SOS, EOI, SOI = 0xDA, 0xD9, 0xD8
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG, DAC are not frames
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_MARKER = re.compile(rb"\xff[^\x00\xff]")  # a marker, skipping fill bytes and stuffing
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # restart markers stay in the scan


@dataclass(frozen=True, slots=True)
class Segment:
    """A JPEG marker segment (payload after the length field) or a run of scan data."""

    marker: int
    start: int
    end: int

    def payload(self, data: bytes) -> bytes:
        return data[self.start + 4 : self.end]


def _next_marker(data: bytes, pos: int, in_scan: bool) -> int | None:
    """Where the next marker starts; None when a scan runs to the end of the data."""
    found = (_MARKER_IN_SCAN if in_scan else _MARKER).search(data, pos)
    if found is None and not in_scan:
        raise malformed("JPEG", "no image data")
    return None if found is None else found.start()


def jpeg_segments(data: bytes) -> list[Segment]:
    """Split a JPEG into segments up to EOI (or the end, when EOI is missing)."""
    if not data.startswith(b"\xff\xd8"):
        raise malformed("JPEG", "no SOI marker")
    segments, pos, scans, junk = [Segment(SOI, 0, 2)], 2, 0, 0
    while len(segments) <= MAX_JPEG_SEGMENTS:
        marker_at = _next_marker(data, pos, scans > 0)
        scan_end = len(data) if marker_at is None else marker_at
        if scans and scan_end > pos:
            segments.append(Segment(ENTROPY, pos, scan_end))
        if marker_at is None:
            return segments
        junk += 0 if scans else marker_at - pos
        marker, pos = data[marker_at + 1], marker_at + 2
        if marker == EOI:
            if not scans:
                raise malformed("JPEG", "EOI before any scan")
            segments.append(Segment(EOI, marker_at, pos))
            return segments
        if marker not in _STANDALONE:
            pos = _segment_end(data, marker_at)
            scans += marker == SOS
        if scans > MAX_JPEG_SCANS or junk > MAX_JPEG_JUNK:
            raise malformed("JPEG", "too many scans or stray bytes")
        segments.append(Segment(marker, marker_at, pos))
    raise malformed("JPEG", "too many segments")


def _segment_end(data: bytes, marker_at: int) -> int:
    if marker_at + 4 > len(data):
        raise malformed("JPEG", "truncated segment")
    length = int.from_bytes(data[marker_at + 2 : marker_at + 4], "big")
    end = marker_at + 2 + length
    if length < 2 or end > len(data):
        raise malformed("JPEG", "truncated segment")
    return end


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _is_metadata_marker(marker: int) -> bool:
    return 0xE0 <= marker <= 0xEF or marker == 0xFE  # APPn, COM


def _kept_payload(marker: int, payload: bytes, *, first_exif: bool) -> bytes | None:
    """What survives of an APPn or COM payload: itself, a reduced copy, or None."""
    if first_exif:
        tiff = payload[len(EXIF_HEADER) :]
        reduced = reduced_tiff(tiff)
        if reduced is None or reduced is tiff:
            return None if reduced is None else payload
        return EXIF_HEADER + reduced
    if marker == 0xE0 and payload.startswith(b"JFIF\x00"):
        # A JFIF thumbnail can show what a crop removed: keep the header, not the pixels.
        return payload if len(payload) <= 14 else payload[:12] + b"\x00\x00"
    if marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"):
        return payload
    if marker == 0xEE and payload.startswith(b"Adobe"):
        return payload  # colour transform of CMYK and YCCK images
    return None


class Jpeg:
    """A JPEG split into its segments (an MPO: its first picture, up to the first EOI)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.segments = jpeg_segments(data)

    def geometry(self) -> Geometry:
        scans = sum(segment.marker == SOS for segment in self.segments)
        for segment in self.segments:
            if segment.marker == SOS:
                break
            if segment.marker in SOF_MARKERS:
                frame = segment.payload(self.data)  # precision, height, width, components...
                if len(frame) < 6:
                    break
                height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
                return Geometry(width, height, 1, scans)
        raise InvalidFileFormat("The JPEG has no frame header")

    def _exif_payloads(self) -> list[bytes]:
        payloads = (s.payload(self.data) for s in self.segments if s.marker == 0xE1)
        return [payload for payload in payloads if payload.startswith(EXIF_HEADER)]

    def orientation(self) -> int | None:
        payloads = self._exif_payloads()
        return tiff_orientation(payloads[0]) if payloads else None

    def first_frame(self) -> tuple[bytes, Placement] | None:
        return None

    def stripped(self) -> bytes:
        data, view, parts = self.data, memoryview(self.data), list[bytes | memoryview]()
        exif_seen = False
        for seg in self.segments:
            if not _is_metadata_marker(seg.marker):
                parts.append(view[seg.start : seg.end])
                continue
            payload = seg.payload(data)
            is_exif = seg.marker == 0xE1 and payload.startswith(EXIF_HEADER)
            kept = _kept_payload(seg.marker, payload, first_exif=is_exif and not exif_seen)
            exif_seen |= is_exif
            if kept is payload:
                parts.append(view[seg.start : seg.end])
            elif kept is not None:
                parts.append(_jpeg_segment(seg.marker, kept))
        stripped = b"".join(parts)
        return data if stripped == data else stripped
