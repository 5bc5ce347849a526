"""PNG: chunks from IHDR to IEND, walked once for geometry, orientation and stripping."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from app.images.containers import apng
from app.images.containers.base import Geometry, Placement, element_budget, malformed
from app.images.containers.exif import reduced_tiff, tiff_orientation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BYTES_PER_CHUNK = 1_024  # libpng writes 8 KiB IDAT chunks

# Ancillary chunks that decoding, colour or animation depend on; the others are dropped.
_PNG_ANCILLARY_KEPT = frozenset(
    {
        b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI",
        b"bKGD", b"hIST", b"pHYs", b"sPLT", b"tIME", b"acTL", b"fcTL", b"fdAT", b"oFFs",
        b"sCAL",
    }
)  # fmt: skip
_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})


@dataclass(frozen=True, slots=True)
class Chunk:
    """A PNG chunk: 4-byte length, type, payload, CRC."""

    type: bytes
    start: int
    end: int

    def payload(self, data: bytes) -> bytes:
        return data[self.start + 8 : self.end - 4]


def png_chunks(data: bytes) -> list[Chunk]:
    """Split a PNG into chunks from IHDR to IEND (anything after IEND is ignored)."""
    if not data.startswith(PNG_SIGNATURE):
        raise malformed("PNG", "bad signature")
    chunks: list[Chunk] = []
    pos, budget = len(PNG_SIGNATURE), element_budget(len(data), PNG_BYTES_PER_CHUNK)
    while not chunks or chunks[-1].type != b"IEND":
        if pos + 12 > len(data) or len(chunks) >= budget:
            raise malformed("PNG", "truncated or too many chunks")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF or not kind.isalpha() or end > len(data):
            raise malformed("PNG", "bad chunk")
        chunks.append(Chunk(kind, pos, end))
        pos = end
    if chunks[0].type != b"IHDR" or chunks[0].end - chunks[0].start != 25:
        raise malformed("PNG", "IHDR must come first")
    return chunks


def check_png_chunks(data: bytes, chunks: list[Chunk]) -> None:
    """Refuse what a browser refuses: a chunk whose CRC is wrong (libpng stops on those),
    and a critical chunk it does not know (the PNG spec forbids showing the image)."""
    for chunk in chunks:
        if chunk.type[:1].isupper() and chunk.type not in _PNG_CRITICAL:
            raise malformed("PNG", f"unknown critical chunk {chunk.type.decode()}")
        (crc,) = struct.unpack_from(">I", data, chunk.end - 4)
        if zlib.crc32(data[chunk.start + 4 : chunk.end - 4]) != crc:
            raise malformed("PNG", f"bad CRC in chunk {chunk.type.decode()}")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


class Png:
    """A PNG (or APNG) split into its chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.chunks = png_chunks(data)

    def animation(self) -> apng.Animation | None:
        """The animation browsers play, None for a still image (see `apng`)."""
        return apng.read_animation(self.data, self.chunks)

    def geometry(self) -> Geometry:
        """The canvas and frames, once every chunk's CRC and type has been checked."""
        check_png_chunks(self.data, self.chunks)
        header = self.chunks[0].payload(self.data)
        width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
        animation = self.animation()
        if animation is None:
            return Geometry(width, height, 1)
        return Geometry(
            width, height, animation.frames, decoded=animation.decoded_pixels, animation=animation
        )

    def orientation(self) -> int | None:
        exif = next((c for c in self.chunks if c.type == b"eXIf"), None)
        return None if exif is None else tiff_orientation(exif.payload(self.data))

    def first_frame(self) -> tuple[bytes, Placement] | None:
        return None

    def stripped(self) -> bytes:
        data, view, exif_seen = self.data, memoryview(self.data), False
        parts = list[bytes | memoryview]([PNG_SIGNATURE])
        for chunk in self.chunks:
            if chunk.type == b"eXIf" and not exif_seen:
                exif_seen = True
                tiff = chunk.payload(data)
                reduced = reduced_tiff(tiff)
                if reduced is tiff:
                    parts.append(view[chunk.start : chunk.end])
                elif reduced is not None:
                    parts.append(_png_chunk(b"eXIf", reduced))
            elif chunk.type[:1].isupper() or chunk.type in _PNG_ANCILLARY_KEPT:
                parts.append(view[chunk.start : chunk.end])
        stripped = b"".join(parts)
        return data if stripped == data else stripped
