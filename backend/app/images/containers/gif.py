"""GIF: header, extension, image and trailer blocks, walked once for every use.

A byte that starts no block ends the stream, as in browsers (Firefox, Chromium): a
second GIF appended without the first one's trailer is not part of the image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from app.images.containers.base import Geometry, Placement, element_budget, malformed

GIF_BYTES_PER_SUB_BLOCK = 128  # encoders fill sub-blocks to 255 bytes
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
            raise malformed("GIF", "truncated data or too many sub-blocks")
        return pos + 1


def _palette_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _u16le(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 2], "little")


def _gif_block_end(data: bytes, pos: int, chains: _SubBlocks) -> int:
    kind = data[pos]
    if kind == GIF_EXTENSION:
        return chains.skip(pos + 2)
    if kind == GIF_IMAGE and pos + 10 <= len(data):
        return chains.skip(pos + 10 + _palette_size(data[pos + 9]) + 1)
    raise malformed("GIF", f"unexpected or truncated block {kind:#04x}")


def gif_blocks(data: bytes) -> list[Block]:
    """Split a GIF into blocks up to the trailer, or up to a byte that starts no block."""
    if len(data) < 13 or not data.startswith((b"GIF87a", b"GIF89a")):
        raise malformed("GIF", "bad header")
    pos = 13 + _palette_size(data[10])
    if pos > len(data):
        raise malformed("GIF", "truncated palette")
    blocks, chains = [Block(GIF_HEADER, 0, pos)], _SubBlocks(data)
    while pos < len(data) and blocks[-1].kind != GIF_TRAILER:
        if data[pos] not in (GIF_EXTENSION, GIF_IMAGE, GIF_TRAILER):
            break
        end = pos + 1 if data[pos] == GIF_TRAILER else _gif_block_end(data, pos, chains)
        blocks.append(Block(data[pos], pos, end))
        pos = end
    return blocks


class Gif:
    """A GIF split into its blocks (its first stream: what browsers show)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.blocks = gif_blocks(data)

    def geometry(self) -> Geometry:
        data = self.data
        width, height, frames = _u16le(data, 6), _u16le(data, 8), 0
        for block in self.blocks:
            if block.kind == GIF_IMAGE:
                left, top = _u16le(data, block.start + 1), _u16le(data, block.start + 3)
                width = max(width, left + _u16le(data, block.start + 5))
                height = max(height, top + _u16le(data, block.start + 7))
                frames += 1
        return Geometry(width, height, frames)

    def orientation(self) -> int | None:
        return None  # GIF has no EXIF

    def first_stream(self) -> bytes:
        """The GIF up to its trailer, ending with one: what browsers show of the file."""
        data, end = self.data, self.blocks[-1]
        if end.kind == GIF_TRAILER:
            return data[: end.end]
        return data if end.end == len(data) else data[: end.end] + bytes((GIF_TRAILER,))

    def first_frame(self) -> tuple[bytes, Placement]:
        """A GIF of the first frame alone (its screen the frame's size), and where the
        frame sits on the original screen."""
        data, blocks = self.data, self.blocks
        image = next((b for b in blocks if b.kind == GIF_IMAGE), None)
        if image is None:
            raise malformed("GIF", "no image")
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

    def _keeps(self, block: Block) -> bool:
        if block.kind != GIF_EXTENSION:
            return True
        label = self.data[block.start + 1]
        if label == 0xFE:  # comment
            return False
        if label == 0xFF:  # application: keep loops and colour profiles only
            return self.data[block.start + 2 : block.start + 14] in (
                b"\x0b" + name for name in _GIF_APPLICATIONS_KEPT
            )
        return True

    def stripped(self) -> bytes:
        data, view, blocks = self.data, memoryview(self.data), self.blocks
        parts = list[bytes | memoryview](view[b.start : b.end] for b in blocks if self._keeps(b))
        if blocks[-1].kind != GIF_TRAILER and blocks[-1].end < len(data):
            parts.append(bytes((GIF_TRAILER,)))  # the stream ended at bytes that start no block
        stripped = b"".join(parts)
        return data if stripped == data else stripped
