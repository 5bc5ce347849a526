"""Client filenames made safe to store and to echo in headers and pages."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from app.images import formats

MAX_FILENAME_CHARS = 255


def safe_filename(raw: str, image_format: str | None) -> str:
    """Drop path parts, control/format (bidi, zero-width) characters; cap at 255 chars."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = name.replace("\t", " ")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    name = " ".join(name.split()).strip(" .")
    if not name:
        name = f"image.{formats.named(image_format).extension}" if image_format else "file"
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def content_disposition(filename: str, *, attachment: bool) -> str:
    """RFC 6266 header value: an ASCII fallback plus the UTF-8 name, both quoted safely."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = "".join(ch if ch.isprintable() and ch not in '"\\;' else "_" for ch in fallback)
    fallback = fallback.strip() or "image"
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
