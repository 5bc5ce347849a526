"""Image containers walked by our own code, never trusting a length.

One module per container (`jpeg`, `png` with `apng`, `gif`, `webp`) holds its walker,
which splits the file into spans (JPEG segments, PNG chunks, GIF blocks, RIFF chunks)
checking every length against the data, so that a hostile file can only ever raise
`InvalidFileFormat`. `parse` walks a file once; the parsed `Container` then answers
everything an upload needs from that walk: the geometry checked before decoding, the
EXIF orientation, an animation's first frame alone, and the stripped bytes.

Stripping is container surgery: location and identity go, pixels stay untouched. It
keeps an allowlist of spans that decoding or colour depends on, rewrites EXIF down to
its Orientation tag, and drops everything else, including any bytes after the image's
logical end.
"""

from __future__ import annotations

from collections.abc import Callable

from app.images import formats
from app.images.containers.base import Container, Geometry, Placement
from app.images.containers.gif import Gif
from app.images.containers.jpeg import Jpeg
from app.images.containers.png import Png
from app.images.containers.webp import Webp
from app.images.errors import InvalidFileFormat
from app.images.formats import Format

__all__ = ["Container", "Geometry", "Placement", "parse", "strip_metadata"]

_WALKERS: dict[Format, Callable[[bytes], Container]] = {
    formats.JPEG: Jpeg,
    formats.PNG: Png,
    formats.GIF: Gif,
    formats.WEBP: Webp,
}


def parse(data: bytes, fmt: Format | str) -> Container:
    """Walk `data` as a file in `fmt` once; raise InvalidFileFormat if it is malformed."""
    try:
        walker = _WALKERS[fmt if isinstance(fmt, Format) else formats.named(fmt)]
    except KeyError:
        raise InvalidFileFormat(f"Cannot read the container of format {fmt!r}") from None
    return walker(data)


def strip_metadata(data: bytes, fmt: Format | str) -> bytes:
    """`data` without location or identifying metadata; `data` itself when nothing goes."""
    return parse(data, fmt).stripped()
