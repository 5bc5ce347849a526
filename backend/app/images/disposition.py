"""A multipart part's Content-Disposition: the filename it names, `filename*` (RFC 8187)
first, else `filename`."""

from __future__ import annotations

import re
from urllib.parse import unquote

from app.errors import InvalidRequest

FILENAME_STAR = re.compile(rb"filename\*\s*=\s*([^;]+)", re.IGNORECASE)
# RFC 8187: recipients must support UTF-8 and ISO-8859-1; nothing else is decoded.
FILENAME_CHARSETS = {
    "": "utf-8",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-1": "latin-1",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "us-ascii": "ascii",
    "ascii": "ascii",
}


def part_filename(disposition: bytes, options: dict[bytes, bytes]) -> str:
    """The client's name for the part, decoded; 400 for a charset we do not decode."""
    star = FILENAME_STAR.search(disposition)
    if star and b"'" in star.group(1):
        charset, _, rest = star.group(1).strip().strip(b'"').partition(b"'")
        _, _, encoded = rest.partition(b"'")
        codec = FILENAME_CHARSETS.get(charset.decode("latin-1").strip().lower())
        if codec is None:
            raise InvalidRequest(
                "filename* names a charset other than UTF-8 or ISO-8859-1",
                details={"charsets": ["UTF-8", "ISO-8859-1"]},
            )
        return unquote(encoded.decode("ascii", "replace"), encoding=codec, errors="replace")
    name = options.get(b"filename", b"").decode("utf-8", "replace")
    # Browsers (WHATWG form encoding) escape exactly these three characters in filenames.
    return name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
