"""The albums' cursors: opaque to clients, keyset positions inside.

Albums list by (created_at, id), newest first; an album's images by their position."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from app.errors import InvalidRequest

AlbumPosition = tuple[datetime, uuid.UUID]
_ALBUMS = "a"
_IMAGES = "i"
MAX_POSITION = 2**31


def _encode(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError included
        raise InvalidRequest("The cursor is not valid") from exc
    found, *parts = raw.split("|")
    if found != kind:
        raise InvalidRequest("The cursor is not valid")
    return parts


def album_cursor(created_at: datetime, album_id: uuid.UUID) -> str:
    """The cursor of the page of albums after this one."""
    return _encode(_ALBUMS, created_at.isoformat(), album_id.hex)


def album_position(cursor: str) -> AlbumPosition:
    """The (created_at, id) an albums cursor names; 400 for anything else."""
    try:
        created, album_id = _decode(cursor, _ALBUMS)
        position = datetime.fromisoformat(created), uuid.UUID(hex=album_id)
    except ValueError as exc:
        raise InvalidRequest("The cursor is not valid") from exc
    if position[0].tzinfo is None:
        raise InvalidRequest("The cursor is not valid")
    return position


def image_cursor(position: int) -> str:
    """The cursor of the album's images after the one at `position`."""
    return _encode(_IMAGES, str(position))


def image_position(cursor: str) -> int:
    """The album position an images cursor names; 400 for anything else."""
    try:
        (raw,) = _decode(cursor, _IMAGES)
        position = int(raw)
    except ValueError as exc:
        raise InvalidRequest("The cursor is not valid") from exc
    if not 0 <= position < MAX_POSITION:  # a database integer: never an overflow (500)
        raise InvalidRequest("The cursor is not valid")
    return position
