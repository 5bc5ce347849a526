"""APNG animations as browsers play them: which frames there are, and whether they are whole.

A PNG with a usable `acTL` chunk is an animation of the frames its `fcTL` chunks describe.
When the `acTL` itself is unusable (zero or 2**31 frames or more, a second one, one after
the image data, or fewer frames than it claims), browsers show the default image: so do
we, and the file is a still image (`read_animation` returns None). When the `acTL` is
fine but a frame is damaged (sequence numbers out of order, a frame without data or
outside the canvas, compressed data that does not inflate to the frame's size), the file
is refused: browsers stop at such a frame, and our thumbnails would fail on it.

When the first `fcTL` comes after the image data, the default image is not part of the
animation: browsers never show it, so it is neither a frame nor a thumbnail.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.images.errors import InvalidFileFormat

if TYPE_CHECKING:
    from app.images.containers.png import Chunk

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by PNG colour type
# Adam7 passes: first column and row, column and row steps
_ADAM7 = (
    (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)
)  # fmt: skip
_MAX_ACTL_FRAMES = 2**31 - 1
_INFLATE_STEP = 256 * 1024  # output bytes per zlib call: bounds the memory a check uses


def _damaged(why: str) -> InvalidFileFormat:
    return InvalidFileFormat(f"Malformed PNG file: {why}")


@dataclass(frozen=True, slots=True)
class Frame:
    width: int
    height: int
    default: bool  # its data is the default image (IDAT)
    data: list[tuple[int, int]] = field(default_factory=list)  # fdAT payload spans

    @property
    def whole(self) -> bool:
        return self.default or bool(self.data)


@dataclass(frozen=True, slots=True)
class Animation:
    frames: int  # the frames a browser plays
    hidden_default: bool  # the default image is not one of them
    later: list[Frame]  # the played frames stored in fdAT chunks, checked by `check_frames`
    header: bytes  # IHDR payload

    @property
    def decoded_pixels(self) -> int:
        """Pixels decoded to validate the file: the default image and every later frame."""
        width, height = struct.unpack_from(">II", self.header)
        return int(width * height) + sum(frame.width * frame.height for frame in self.later)


def _control(data: bytes, chunks: list[Chunk], first_idat: int) -> int | None:
    """The frame count of a usable acTL, None for a still image or an unusable acTL."""
    controls = [chunk for chunk in chunks if chunk.type == b"acTL"]
    if len(controls) != 1 or controls[0].start > first_idat:
        return None
    payload = controls[0].payload(data)
    if len(payload) != 8:
        return None
    frames = int.from_bytes(payload[:4], "big")
    return frames if 0 < frames <= _MAX_ACTL_FRAMES else None


def read_animation(data: bytes, chunks: list[Chunk]) -> Animation | None:
    """The animation of a PNG split into `chunks`, None when browsers show a still image.

    Checks every frame's structure (not its pixels: see `check_frames`)."""
    header = chunks[0].payload(data)
    canvas_width, canvas_height = struct.unpack_from(">II", header)
    first_idat = next((c.start for c in chunks if c.type == b"IDAT"), len(data))
    declared = _control(data, chunks, first_idat)
    if declared is None:
        return None
    frames: list[Frame] = []
    sequence = 0
    for chunk in chunks:
        if chunk.type not in (b"fcTL", b"fdAT"):
            continue
        payload = chunk.payload(data)
        if len(payload) < 4 or int.from_bytes(payload[:4], "big") != sequence:
            raise _damaged("APNG frame sequence out of order")
        sequence += 1
        if chunk.type == b"fdAT":
            if not frames or frames[-1].default or chunk.start < first_idat:
                raise _damaged("APNG frame data without a frame")
            frames[-1].data.append((chunk.start + 12, chunk.end - 4))
            continue
        if frames and not frames[-1].whole:
            raise _damaged("APNG frame without data")
        default = chunk.start < first_idat  # its data is the default image
        frames.append(_frame(payload, canvas_width, canvas_height, default))
    if frames and not frames[-1].whole:
        raise _damaged("APNG frame without data")
    if len(frames) < declared:
        return None  # the acTL claims frames that are not there: a still image
    played = frames[:declared]
    later = [frame for frame in played if not frame.default]
    return Animation(len(played), not played[0].default, later, header)


def _frame(payload: bytes, canvas_width: int, canvas_height: int, default: bool) -> Frame:
    if len(payload) != 26:
        raise _damaged("bad APNG frame control chunk")
    width, height, left, top = struct.unpack_from(">IIII", payload, 4)
    dispose, blend = payload[24], payload[25]
    inside = left + width <= canvas_width and top + height <= canvas_height
    if not (width and height and inside) or dispose > 2 or blend > 1:
        raise _damaged("APNG frame outside the canvas or with unknown operations")
    if default and (left, top, width, height) != (0, 0, canvas_width, canvas_height):
        raise _damaged("the APNG default image frame must cover the canvas")
    return Frame(width, height, default)


def _raw_size(header: bytes, width: int, height: int) -> int:
    """Bytes of filtered scanlines that a frame of width x height inflates to."""
    depth, colour, interlace = header[8], header[9], header[12]
    bits = _CHANNELS.get(colour, 4) * depth

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w and h else 0

    if interlace != 1:
        return rows(width, height)
    return sum(
        rows(max(0, -(-(width - x) // dx)), max(0, -(-(height - y) // dy)))
        for x, y, dx, dy in _ADAM7
    )


def check_frames(data: bytes, animation: Animation) -> None:
    """Inflate every later frame, in bounded memory, and check it has all its scanlines."""
    for number, frame in enumerate(animation.later, 1):
        needed = _raw_size(animation.header, frame.width, frame.height)
        inflater, produced = zlib.decompressobj(), 0
        try:
            for start, end in frame.data:
                pending = data[start:end]
                while pending and produced < needed:
                    produced += len(inflater.decompress(pending, _INFLATE_STEP))
                    pending = inflater.unconsumed_tail
                if produced >= needed:
                    break
        except zlib.error as exc:
            raise _damaged(f"APNG frame {number} does not inflate") from exc
        if produced < needed:
            raise _damaged(f"APNG frame {number} is missing image data")
