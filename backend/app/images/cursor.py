"""The listing cursor: opaque to clients, the keyset position of a page's last image."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from app.errors import InvalidRequest
from app.images.cache import CachedImage

Position = tuple[datetime, uuid.UUID]  # (created_at, id), as repository.list_images takes it


def encode_cursor(last: CachedImage) -> str:
    """The cursor of the page that follows `last`."""
    raw = f"{last.created_at.isoformat()}|{last.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; 400 for anything this module did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, image_id = raw.split("|")
        position = datetime.fromisoformat(created), uuid.UUID(hex=image_id)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError included
        raise InvalidRequest("The cursor is not valid") from exc
    if position[0].tzinfo is None:
        raise InvalidRequest("The cursor is not valid")
    return position
