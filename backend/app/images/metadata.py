"""Metadata stripping by container surgery: location and identity go, pixels stay untouched.

Each format has a walker that splits the file into spans (JPEG segments, PNG chunks,
GIF blocks, RIFF chunks), checking every length against the data so that a hostile file
can only ever raise `InvalidFileFormat`. Stripping keeps an allowlist of spans that
decoding or colour depends on, rewrites EXIF down to its Orientation tag, and drops
everything else, including any bytes after the image's logical end.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from app.images.errors import InvalidFileFormat

ORIENTATION_TAG = 0x0112
EXIF_HEADER = b"Exif\x00\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# A hostile file can pack many tiny elements (chunks, sub-blocks) into few bytes, and
# Pillow walks some of them in Python (about 1 us per GIF sub-block, 10 us per PNG chunk).
# Real encoders write large elements, so we refuse files holding far more elements than
# their size explains. These budgets keep the worst case near 100 ms for a 5 MiB file.
_BASE_ELEMENTS = 10_000
PNG_BYTES_PER_CHUNK = 1_024  # libpng writes 8 KiB IDAT chunks
GIF_BYTES_PER_SUB_BLOCK = 128  # encoders fill sub-blocks to 255 bytes
WEBP_BYTES_PER_CHUNK = 256  # libwebp parses these in C; only our walker is in Python
MAX_JPEG_SEGMENTS = 4_096  # 255 ICC chunks, extended XMP and many scans fit
MAX_JPEG_SCANS = 256  # see imaging.JPEG_SCAN_PIXEL_FACTOR for the budget that matters
MAX_JPEG_JUNK = 4_096  # stray bytes between markers; Pillow skips them one at a time


def element_budget(size: int, bytes_per_element: int) -> int:
    """How many container elements a file of `size` bytes may hold."""
    return _BASE_ELEMENTS + size // bytes_per_element


def _malformed(fmt: str, why: str) -> InvalidFileFormat:
    return InvalidFileFormat(f"Malformed {fmt} file: {why}")


# --------------------------------------------------------------------------- EXIF (TIFF)


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


def _reduced_tiff(tiff: bytes) -> bytes | None:
    """The orientation-only TIFF to keep in place of `tiff`: `tiff` itself if already so."""
    orientation = tiff_orientation(tiff)
    if orientation is None:
        return None
    reduced = minimal_tiff(orientation, big_endian=tiff.startswith((b"MM", EXIF_HEADER + b"MM")))
    return tiff if tiff == reduced else reduced


# --------------------------------------------------------------------------- JPEG

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
        raise _malformed("JPEG", "no image data")
    return None if found is None else found.start()


def jpeg_segments(data: bytes) -> list[Segment]:
    """Split a JPEG into segments up to EOI (or the end, when EOI is missing)."""
    if not data.startswith(b"\xff\xd8"):
        raise _malformed("JPEG", "no SOI marker")
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
                raise _malformed("JPEG", "EOI before any scan")
            segments.append(Segment(EOI, marker_at, pos))
            return segments
        if marker not in _STANDALONE:
            pos = _segment_end(data, marker_at)
            scans += marker == SOS
        if scans > MAX_JPEG_SCANS or junk > MAX_JPEG_JUNK:
            raise _malformed("JPEG", "too many scans or stray bytes")
        segments.append(Segment(marker, marker_at, pos))
    raise _malformed("JPEG", "too many segments")


def _segment_end(data: bytes, marker_at: int) -> int:
    if marker_at + 4 > len(data):
        raise _malformed("JPEG", "truncated segment")
    length = int.from_bytes(data[marker_at + 2 : marker_at + 4], "big")
    end = marker_at + 2 + length
    if length < 2 or end > len(data):
        raise _malformed("JPEG", "truncated segment")
    return end


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _is_metadata_marker(marker: int) -> bool:
    return 0xE0 <= marker <= 0xEF or marker == 0xFE  # APPn, COM


def _kept_jpeg_payload(marker: int, payload: bytes, *, first_exif: bool) -> bytes | None:
    """What survives of an APPn or COM payload: itself, a reduced copy, or None."""
    if first_exif:
        tiff = payload[len(EXIF_HEADER) :]
        reduced = _reduced_tiff(tiff)
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


def _strip_jpeg(data: bytes) -> list[bytes | memoryview]:
    view, parts = memoryview(data), list[bytes | memoryview]()
    exif_seen = False
    for seg in jpeg_segments(data):
        if not _is_metadata_marker(seg.marker):
            parts.append(view[seg.start : seg.end])
            continue
        payload = seg.payload(data)
        is_exif = seg.marker == 0xE1 and payload.startswith(EXIF_HEADER)
        kept = _kept_jpeg_payload(seg.marker, payload, first_exif=is_exif and not exif_seen)
        exif_seen |= is_exif
        if kept is payload:
            parts.append(view[seg.start : seg.end])
        elif kept is not None:
            parts.append(_jpeg_segment(seg.marker, kept))
    return parts


# --------------------------------------------------------------------------- PNG

# Ancillary chunks that decoding, colour or animation depend on; the others are dropped.
_PNG_ANCILLARY_KEPT = frozenset(
    {
        b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI",
        b"bKGD", b"hIST", b"pHYs", b"sPLT", b"tIME", b"acTL", b"fcTL", b"fdAT", b"oFFs",
        b"sCAL",
    }
)  # fmt: skip


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
        raise _malformed("PNG", "bad signature")
    chunks: list[Chunk] = []
    pos, budget = len(PNG_SIGNATURE), element_budget(len(data), PNG_BYTES_PER_CHUNK)
    while not chunks or chunks[-1].type != b"IEND":
        if pos + 12 > len(data) or len(chunks) >= budget:
            raise _malformed("PNG", "truncated or too many chunks")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF or not kind.isalpha() or end > len(data):
            raise _malformed("PNG", "bad chunk")
        chunks.append(Chunk(kind, pos, end))
        pos = end
    if chunks[0].type != b"IHDR" or chunks[0].end - chunks[0].start != 25:
        raise _malformed("PNG", "IHDR must come first")
    return chunks


_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})


def check_png_chunks(data: bytes, chunks: list[Chunk]) -> None:
    """Refuse what a browser refuses: a chunk whose CRC is wrong (libpng stops on those),
    and a critical chunk it does not know (the PNG spec forbids showing the image)."""
    for chunk in chunks:
        if chunk.type[:1].isupper() and chunk.type not in _PNG_CRITICAL:
            raise _malformed("PNG", f"unknown critical chunk {chunk.type.decode()}")
        (crc,) = struct.unpack_from(">I", data, chunk.end - 4)
        if zlib.crc32(data[chunk.start + 4 : chunk.end - 4]) != crc:
            raise _malformed("PNG", f"bad CRC in chunk {chunk.type.decode()}")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _strip_png(data: bytes) -> list[bytes | memoryview]:
    view, exif_seen = memoryview(data), False
    parts = list[bytes | memoryview]([PNG_SIGNATURE])
    for chunk in png_chunks(data):
        if chunk.type == b"eXIf" and not exif_seen:
            exif_seen = True
            tiff = chunk.payload(data)
            reduced = _reduced_tiff(tiff)
            if reduced is tiff:
                parts.append(view[chunk.start : chunk.end])
            elif reduced is not None:
                parts.append(_png_chunk(b"eXIf", reduced))
        elif chunk.type[:1].isupper() or chunk.type in _PNG_ANCILLARY_KEPT:
            parts.append(view[chunk.start : chunk.end])
    return parts


# --------------------------------------------------------------------------- GIF

GIF_HEADER, GIF_EXTENSION, GIF_IMAGE, GIF_TRAILER = 0, 0x21, 0x2C, 0x3B
_GIF_APPLICATIONS_KEPT = (b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012")


@dataclass(frozen=True, slots=True)
class Block:
    """A GIF block: header (with global palette), extension, image or trailer."""

    kind: int
    start: int
    end: int


class _SubBlocks:
    """Skips data sub-block chains, charging each sub-block to a file-wide budget."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.left = element_budget(len(data), GIF_BYTES_PER_SUB_BLOCK)

    def skip(self, pos: int) -> int:
        """The offset after the chain of sub-blocks that starts at `pos`."""
        data, size, left = self.data, len(self.data), self.left
        while pos < size and data[pos] and left:
            pos += data[pos] + 1
            left -= 1
        self.left = left
        if pos >= size or not left:
            raise _malformed("GIF", "truncated data or too many sub-blocks")
        return pos + 1


def _palette_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _gif_block_end(data: bytes, pos: int, chains: _SubBlocks) -> int:
    kind = data[pos]
    if kind == GIF_EXTENSION:
        return chains.skip(pos + 2)
    if kind == GIF_IMAGE and pos + 10 <= len(data):
        return chains.skip(pos + 10 + _palette_size(data[pos + 9]) + 1)
    raise _malformed("GIF", f"unexpected or truncated block {kind:#04x}")


def gif_blocks(data: bytes) -> list[Block]:
    """Split a GIF into blocks up to the trailer (or the end, when it is missing).

    A byte that starts no block ends the stream, as in browsers (Firefox, Chromium): a
    second GIF appended without the first one's trailer is not part of the image."""
    if len(data) < 13 or not data.startswith((b"GIF87a", b"GIF89a")):
        raise _malformed("GIF", "bad header")
    pos = 13 + _palette_size(data[10])
    if pos > len(data):
        raise _malformed("GIF", "truncated palette")
    blocks, chains = [Block(GIF_HEADER, 0, pos)], _SubBlocks(data)
    while pos < len(data) and blocks[-1].kind != GIF_TRAILER:
        if data[pos] not in (GIF_EXTENSION, GIF_IMAGE, GIF_TRAILER):
            break
        end = pos + 1 if data[pos] == GIF_TRAILER else _gif_block_end(data, pos, chains)
        blocks.append(Block(data[pos], pos, end))
        pos = end
    return blocks


def gif_first_stream(data: bytes) -> bytes:
    """The GIF up to its trailer, ending with one: what browsers show of `data`."""
    end = gif_blocks(data)[-1]
    if end.kind == GIF_TRAILER:
        return data[: end.end]
    return data if end.end == len(data) else data[: end.end] + bytes((GIF_TRAILER,))


def gif_first_frame(data: bytes) -> tuple[bytes, tuple[int, int, int, int]]:
    """A GIF of the first frame alone (its screen the frame's size), and where the frame
    sits on the original screen: (left, top, width, height)."""
    blocks = gif_blocks(data)
    image = next((b for b in blocks if b.kind == GIF_IMAGE), None)
    if image is None:
        raise _malformed("GIF", "no image")
    left, top, width, height = struct.unpack_from("<HHHH", data, image.start + 1)
    header = bytearray(data[: blocks[0].end])
    struct.pack_into("<HH", header, 6, width, height)
    before = blocks[blocks.index(image) - 1]
    control = b""
    if before.kind == GIF_EXTENSION and data[before.start + 1] == 0xF9:
        control = data[before.start : before.end]  # its transparency and disposal
    descriptor = bytearray(data[image.start : image.end])
    struct.pack_into("<HH", descriptor, 1, 0, 0)
    frame = bytes(header) + control + bytes(descriptor) + bytes((GIF_TRAILER,))
    return frame, (left, top, width, height)


def _gif_keeps(data: bytes, block: Block) -> bool:
    if block.kind != GIF_EXTENSION:
        return True
    label = data[block.start + 1]
    if label == 0xFE:  # comment
        return False
    if label == 0xFF:  # application: keep loops and colour profiles only
        return data[block.start + 2 : block.start + 14] in (
            b"\x0b" + name for name in _GIF_APPLICATIONS_KEPT
        )
    return True


def _strip_gif(data: bytes) -> list[bytes | memoryview]:
    view, blocks = memoryview(data), gif_blocks(data)
    parts = list[bytes | memoryview](view[b.start : b.end] for b in blocks if _gif_keeps(data, b))
    if blocks[-1].kind != GIF_TRAILER and blocks[-1].end < len(data):
        parts.append(bytes((GIF_TRAILER,)))  # the stream ended at bytes that start no block
    return parts


# --------------------------------------------------------------------------- WebP

_WEBP_KEPT = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"})
VP8X_EXIF, VP8X_XMP = 0x08, 0x04


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
        raise _malformed("WebP", "bad header")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    riff_end, pos = 8 + riff_size, 12
    chunks: list[RiffChunk] = []
    budget = element_budget(len(data), WEBP_BYTES_PER_CHUNK)
    if riff_end > len(data):
        raise _malformed("WebP", "truncated")
    while pos < riff_end:
        if pos + 8 > riff_end or len(chunks) >= budget:
            raise _malformed("WebP", "truncated or too many chunks")
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size & 1)
        if end > riff_end:
            raise _malformed("WebP", "chunk overruns the file")
        chunks.append(RiffChunk(fourcc, pos, end))
        pos = end
    if not chunks:
        raise _malformed("WebP", "no chunks")
    return chunks


def webp_first_frame(data: bytes) -> tuple[bytes, tuple[int, int, int, int]] | None:
    """A still WebP of an animation's first frame alone, and where the frame sits on the
    canvas: (left, top, width, height). None when the WebP is not an animation.

    Decoding an animation allocates its whole canvas (libwebp keeps two, Pillow a third),
    however small its frames: a 400-byte file may declare a 7000x7000 canvas."""
    anmf = next((c for c in webp_chunks(data) if c.fourcc == b"ANMF"), None)
    if anmf is None:
        return None
    payload = anmf.payload(data)
    if len(payload) < 16:
        raise _malformed("WebP", "truncated animation frame")
    left, top = (
        2 * int.from_bytes(payload[0:3], "little"),
        2 * int.from_bytes(payload[3:6], "little"),
    )
    width = 1 + int.from_bytes(payload[6:9], "little")
    height = 1 + int.from_bytes(payload[9:12], "little")
    alpha, image, pos = b"", b"", 16
    while pos + 8 <= len(payload) and not image:
        fourcc, size = struct.unpack_from("<4sI", payload, pos)
        end = pos + 8 + size + (size & 1)
        if end > len(payload) + (size & 1):
            raise _malformed("WebP", "animation frame chunk overruns its frame")
        if fourcc == b"ALPH":
            alpha = payload[pos:end]
        elif fourcc in (b"VP8 ", b"VP8L"):
            image = payload[pos:end]
        pos = end
    if not image:
        raise _malformed("WebP", "animation frame without image data")
    body = b"WEBP" + image
    if alpha:
        size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body = b"WEBP" + _riff_chunk(b"VP8X", bytes((0x10, 0, 0, 0)) + size) + alpha + image
    return b"RIFF" + struct.pack("<I", len(body)) + body, (left, top, width, height)


def _riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _webp_exif_chunk(data: bytes, exif: RiffChunk) -> bytes | None:
    """The EXIF chunk to keep in place of `exif`: reduced to its orientation, or None."""
    tiff = exif.payload(data)
    reduced = _reduced_tiff(tiff)
    if reduced is tiff:
        return data[exif.start : exif.end]
    return None if reduced is None else _riff_chunk(b"EXIF", reduced)


def _vp8x_flags(flags: int, *, exif: bool) -> int:
    return (flags & ~(VP8X_EXIF | VP8X_XMP)) | (VP8X_EXIF if exif else 0)


def _strip_webp(data: bytes) -> list[bytes | memoryview]:
    view, chunks = memoryview(data), webp_chunks(data)
    first_exif = next((c for c in chunks if c.fourcc == b"EXIF"), None)
    exif = None if first_exif is None else _webp_exif_chunk(data, first_exif)
    body = list[bytes | memoryview]()
    for chunk in chunks:
        if chunk.fourcc == b"VP8X" and chunk.end - chunk.start > 8:
            flags = _vp8x_flags(data[chunk.start + 8], exif=exif is not None)
            body += [view[chunk.start : chunk.start + 8], bytes((flags,))]
            body.append(view[chunk.start + 9 : chunk.end])
        elif chunk.fourcc in _WEBP_KEPT:
            body.append(view[chunk.start : chunk.end])
        elif chunk is first_exif and exif is not None:
            body.append(exif)
    size = 4 + sum(len(part) for part in body)
    return [b"RIFF", struct.pack("<I", size), b"WEBP", *body]


# --------------------------------------------------------------------------- public

_STRIPPERS: dict[str, Callable[[bytes], list[bytes | memoryview]]] = {
    "jpeg": _strip_jpeg,
    "png": _strip_png,
    "gif": _strip_gif,
    "webp": _strip_webp,
}


def strip_metadata(data: bytes, fmt: str) -> bytes:
    """`data` without location or identifying metadata; `data` itself when nothing goes."""
    stripper = _STRIPPERS.get(fmt)
    if stripper is None:
        raise InvalidFileFormat(f"Cannot strip metadata from format {fmt!r}")
    stripped = b"".join(stripper(data))
    return data if stripped == data else stripped


def exif_orientation(data: bytes, fmt: str) -> int | None:
    """The EXIF Orientation (1..8) a viewer applies to this file, None when there is none."""
    payloads: list[bytes] = []
    if fmt == "jpeg":
        payloads = [s.payload(data) for s in jpeg_segments(data) if s.marker == 0xE1]
        payloads = [p for p in payloads if p.startswith(EXIF_HEADER)]
    elif fmt == "png":
        payloads = [c.payload(data) for c in png_chunks(data) if c.type == b"eXIf"]
    elif fmt == "webp":
        payloads = [c.payload(data) for c in webp_chunks(data) if c.fourcc == b"EXIF"]
    return tiff_orientation(payloads[0]) if payloads else None
