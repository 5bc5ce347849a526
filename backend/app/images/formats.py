"""The image formats Chitram accepts: one row each, and the lookups every module uses.

A format is known by several names: the one in settings and the API (`jpeg`), its MIME
type, Pillow's name, the extension given to a file that has none, the name shown to
people. This table is the only place that pairs them. Nothing here imports Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_BYTES = 16  # enough bytes of the head for `sniff`


@dataclass(frozen=True, slots=True)
class Format:
    """One accepted image format, by each of its names."""

    name: str  # in settings (ALLOWED_FORMATS) and in `ImageInfo.format`
    mime_type: str
    pillow: str  # Pillow's format name, for `Image.open(formats=...)`
    extension: str  # without the dot
    display_name: str
    magic: tuple[bytes, ...]  # the file starts with one of these

    def matches(self, head: bytes) -> bool:
        """Whether `head`, the first bytes of a file, is in this format."""
        if self.name == "webp":  # RIFF, a 4-byte size, then WEBP
            return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        return head.startswith(self.magic)


JPEG = Format("jpeg", "image/jpeg", "JPEG", "jpg", "JPEG", (b"\xff\xd8\xff",))
PNG = Format("png", "image/png", "PNG", "png", "PNG", (b"\x89PNG\r\n\x1a\n",))
WEBP = Format("webp", "image/webp", "WEBP", "webp", "WebP", (b"RIFF",))
GIF = Format("gif", "image/gif", "GIF", "gif", "GIF", (b"GIF87a", b"GIF89a"))
FORMATS = (JPEG, PNG, WEBP, GIF)

_BY_NAME = {fmt.name: fmt for fmt in FORMATS}
_BY_MIME = {fmt.mime_type: fmt for fmt in FORMATS}


def named(name: str) -> Format:
    """The format called `name` in settings and the API; KeyError for any other name."""
    return _BY_NAME[name]


def by_mime_type(mime_type: str) -> Format | None:
    """The format of a MIME type, None when it is not one we accept."""
    return _BY_MIME.get(mime_type)


def by_pillow_name(pillow: str) -> Format | None:
    """The format Pillow calls `pillow` (`Image.format`), None when not ours."""
    return next((fmt for fmt in FORMATS if fmt.pillow == pillow), None)


def by_extension(extension: str) -> Format | None:
    """The format of a file extension (with or without the dot, any case)."""
    ext = extension.lower().lstrip(".")
    return next((fmt for fmt in FORMATS if ext in (fmt.extension, fmt.name)), None)


def sniff(head: bytes) -> Format | None:
    """The format named by the magic bytes at the start of `head`, None for anything else."""
    return next((fmt for fmt in FORMATS if fmt.matches(head)), None)
