"""The listing cursor: opaque to clients, the keyset position of a page's last image and
the order it was listed in (a cursor of one order is refused by the other)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from app.errors import InvalidRequest
from app.images.cache import CachedImage
from app.images.search import Sort

Position = tuple[datetime, uuid.UUID]  # (created_at, id), as repository.list_images takes it
_ORDERS: dict[Sort, str] = {"newest": "n", "oldest": "o"}


def encode_cursor(last: CachedImage, sort: Sort = "newest") -> str:
    """The cursor of the page that follows `last` in the `sort` order."""
    raw = f"{_ORDERS[sort]}|{last.created_at.isoformat()}|{last.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort = "newest") -> Position:
    """The position a cursor of the `sort` order names; 400 for anything this module
    did not make for that order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split("|")
        # Cursors from before sorting existed carry no order: they were all newest first.
        order, created, image_id = parts if len(parts) == 3 else ("n", *parts)
        position = datetime.fromisoformat(created), uuid.UUID(hex=image_id)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError included
        raise InvalidRequest("The cursor is not valid") from exc
    if order != _ORDERS[sort]:
        raise InvalidRequest(f"The cursor belongs to another sort order than {sort!r}")
    if position[0].tzinfo is None:
        raise InvalidRequest("The cursor is not valid")
    return position
