"""What every container walker shares: the element budgets, the error, the geometry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.images.errors import InvalidFileFormat

if TYPE_CHECKING:
    from app.images.containers.apng import Animation

# A hostile file can pack many tiny elements (chunks, sub-blocks) into few bytes, and
# Pillow walks some of them in Python (about 1 us per GIF sub-block, 10 us per PNG chunk).
# Real encoders write large elements, so we refuse files holding far more elements than
# their size explains. These budgets keep the worst case near 100 ms for a 5 MiB file.
_BASE_ELEMENTS = 10_000


def element_budget(size: int, bytes_per_element: int) -> int:
    """How many container elements a file of `size` bytes may hold."""
    return _BASE_ELEMENTS + size // bytes_per_element


def malformed(fmt: str, why: str) -> InvalidFileFormat:
    return InvalidFileFormat(f"Malformed {fmt} file: {why}")


@dataclass(frozen=True, slots=True)
class Geometry:
    """Dimensions declared by the container: the canvas every frame is composed onto."""

    width: int
    height: int
    frames: int
    scans: int = 1  # JPEG decoding passes
    decoded: int | None = None  # pixels validation decodes, when more than the canvas
    animation: Animation | None = None  # an APNG's frames, to check before accepting


# Where a first frame sits on its canvas: (left, top, width, height).
Placement = tuple[int, int, int, int]


class Container(Protocol):
    """A file walked once: every answer below comes from that one walk."""

    def geometry(self) -> Geometry:
        """The canvas and frame count, from the headers (nothing is decoded)."""
        ...

    def orientation(self) -> int | None:
        """The EXIF Orientation (1..8) a viewer applies, None when there is none."""
        ...

    def first_frame(self) -> tuple[bytes, Placement] | None:
        """A file of the first frame alone and where it sits, for animations whose
        canvas decoding would cost more than the frame; None when not worth it."""
        ...

    def stripped(self) -> bytes:
        """The file without location or identifying metadata; the very same bytes
        object when nothing goes."""
        ...
