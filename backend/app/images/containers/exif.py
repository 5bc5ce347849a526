"""EXIF (TIFF) bytes: read the Orientation, and reduce EXIF to the Orientation alone."""

from __future__ import annotations

import struct

ORIENTATION_TAG = 0x0112
EXIF_HEADER = b"Exif\x00\x00"


def _tiff_endian(tiff: bytes) -> str | None:
    if tiff[:4] == b"II*\x00":
        return "<"
    if tiff[:4] == b"MM\x00*":
        return ">"
    return None


def tiff_orientation(tiff: bytes) -> int | None:
    """The Orientation (1..8) in IFD0 of EXIF/TIFF bytes; None when absent or invalid."""
    if tiff.startswith(EXIF_HEADER):
        tiff = tiff[len(EXIF_HEADER) :]
    endian = _tiff_endian(tiff)
    if endian is None or len(tiff) < 10:
        return None
    (ifd,) = struct.unpack_from(endian + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(endian + "H", tiff, ifd)
    count = min(count, (len(tiff) - ifd - 2) // 12)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind, n, value = struct.unpack_from(endian + "HHIH", tiff, entry)
        if tag == ORIENTATION_TAG:
            return value if kind == 3 and n == 1 and 1 <= value <= 8 else None
    return None


def minimal_tiff(orientation: int, *, big_endian: bool = False) -> bytes:
    """TIFF bytes whose only content is IFD0 with a single Orientation entry."""
    endian, order = (">", b"MM") if big_endian else ("<", b"II")
    return order + struct.pack(
        endian + "HIHHHIH2xI", 42, 8, 1, ORIENTATION_TAG, 3, 1, orientation, 0
    )


def reduced_tiff(tiff: bytes) -> bytes | None:
    """The orientation-only TIFF to keep in place of `tiff`: `tiff` itself if already so."""
    orientation = tiff_orientation(tiff)
    if orientation is None:
        return None
    reduced = minimal_tiff(orientation, big_endian=tiff.startswith((b"MM", EXIF_HEADER + b"MM")))
    return tiff if tiff == reduced else reduced
