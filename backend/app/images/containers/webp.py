"""WebP: top-level RIFF chunks, walked once for geometry, orientation, first frame, stripping."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from app.images.containers.base import Geometry, Placement, element_budget, malformed
from app.images.containers.exif import reduced_tiff, tiff_orientation
from app.images.errors import InvalidFileFormat

WEBP_BYTES_PER_CHUNK = 256  # libwebp parses these in C; only our walker is in Python
_WEBP_KEPT = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"})
VP8X_EXIF, VP8X_XMP, VP8X_ALPHA = 0x08, 0x04, 0x10


@dataclass(frozen=True, slots=True)
class RiffChunk:
    """A RIFF chunk: FourCC, little-endian size, payload, padding to an even length."""

    fourcc: bytes
    start: int
    end: int

    def payload(self, data: bytes) -> bytes:
        (size,) = struct.unpack_from("<I", data, self.start + 4)
        return data[self.start + 8 : self.start + 8 + size]


def webp_chunks(data: bytes) -> list[RiffChunk]:
    """Split a WebP into its top-level RIFF chunks (bytes after the RIFF size are ignored)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise malformed("WebP", "bad header")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    riff_end, pos = 8 + riff_size, 12
    chunks: list[RiffChunk] = []
    budget = element_budget(len(data), WEBP_BYTES_PER_CHUNK)
    if riff_end > len(data):
        raise malformed("WebP", "truncated")
    while pos < riff_end:
        if pos + 8 > riff_end or len(chunks) >= budget:
            raise malformed("WebP", "truncated or too many chunks")
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size & 1)
        if end > riff_end:
            raise malformed("WebP", "chunk overruns the file")
        chunks.append(RiffChunk(fourcc, pos, end))
        pos = end
    if not chunks:
        raise malformed("WebP", "no chunks")
    return chunks


def _u16le(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 2], "little")


def _riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _frame_image(payload: bytes) -> tuple[bytes, bytes]:
    """The ALPH chunk (or nothing) and the VP8/VP8L chunk of an ANMF payload."""
    alpha, image, pos = b"", b"", 16
    while pos + 8 <= len(payload) and not image:
        fourcc, size = struct.unpack_from("<4sI", payload, pos)
        end = pos + 8 + size + (size & 1)
        if end > len(payload) + (size & 1):
            raise malformed("WebP", "animation frame chunk overruns its frame")
        if fourcc == b"ALPH":
            alpha = payload[pos:end]
        elif fourcc in (b"VP8 ", b"VP8L"):
            image = payload[pos:end]
        pos = end
    if not image:
        raise malformed("WebP", "animation frame without image data")
    return alpha, image


class Webp:
    """A WebP split into its top-level chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.chunks = webp_chunks(data)

    def geometry(self) -> Geometry:
        first, payload = self.chunks[0].fourcc, self.chunks[0].payload(self.data)
        if first == b"VP8X" and len(payload) >= 10:
            width = 1 + int.from_bytes(payload[4:7], "little")
            height = 1 + int.from_bytes(payload[7:10], "little")
            frames = sum(c.fourcc == b"ANMF" for c in self.chunks)
            return Geometry(width, height, max(frames, 1))
        if first == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
            return Geometry(_u16le(payload, 6) & 0x3FFF, _u16le(payload, 8) & 0x3FFF, 1)
        if first == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
            bits = int.from_bytes(payload[1:5], "little")
            return Geometry((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1)
        raise InvalidFileFormat("The WebP has no valid image header")

    def orientation(self) -> int | None:
        exif = next((c for c in self.chunks if c.fourcc == b"EXIF"), None)
        return None if exif is None else tiff_orientation(exif.payload(self.data))

    def first_frame(self) -> tuple[bytes, Placement] | None:
        """A still WebP of an animation's first frame alone, and where the frame sits on
        the canvas; None when the WebP is not an animation.

        Decoding an animation allocates its whole canvas (libwebp keeps two, Pillow a
        third), however small its frames: a 400-byte file may declare a 7000x7000 canvas."""
        anmf = next((c for c in self.chunks if c.fourcc == b"ANMF"), None)
        if anmf is None:
            return None
        payload = anmf.payload(self.data)
        if len(payload) < 16:
            raise malformed("WebP", "truncated animation frame")
        left = 2 * int.from_bytes(payload[0:3], "little")
        top = 2 * int.from_bytes(payload[3:6], "little")
        width = 1 + int.from_bytes(payload[6:9], "little")
        height = 1 + int.from_bytes(payload[9:12], "little")
        alpha, image = _frame_image(payload)
        body = b"WEBP" + image
        if alpha:
            size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
            vp8x = _riff_chunk(b"VP8X", bytes((VP8X_ALPHA, 0, 0, 0)) + size)
            body = b"WEBP" + vp8x + alpha + image
        return b"RIFF" + struct.pack("<I", len(body)) + body, (left, top, width, height)

    def _kept_exif(self, exif: RiffChunk) -> bytes | None:
        """The EXIF chunk to keep in place of `exif`: reduced to its orientation, or None."""
        tiff = exif.payload(self.data)
        reduced = reduced_tiff(tiff)
        if reduced is tiff:
            return self.data[exif.start : exif.end]
        return None if reduced is None else _riff_chunk(b"EXIF", reduced)

    def stripped(self) -> bytes:
        data, view, chunks = self.data, memoryview(self.data), self.chunks
        first_exif = next((c for c in chunks if c.fourcc == b"EXIF"), None)
        exif = None if first_exif is None else self._kept_exif(first_exif)
        body = list[bytes | memoryview]()
        for chunk in chunks:
            if chunk.fourcc == b"VP8X" and chunk.end - chunk.start > 8:
                flags = data[chunk.start + 8] & ~(VP8X_EXIF | VP8X_XMP)
                flags |= VP8X_EXIF if exif is not None else 0
                body += [view[chunk.start : chunk.start + 8], bytes((flags,))]
                body.append(view[chunk.start + 9 : chunk.end])
            elif chunk.fourcc in _WEBP_KEPT:
                body.append(view[chunk.start : chunk.end])
            elif chunk is first_exif and exif is not None:
                body.append(exif)
        size = 4 + sum(len(part) for part in body)
        stripped = b"".join([b"RIFF", struct.pack("<I", size), b"WEBP", *body])
        return data if stripped == data else stripped
