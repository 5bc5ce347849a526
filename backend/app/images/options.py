"""What an upload may say besides its file (contract section 10): a title, a
description, its visibility and when it expires. Read from the multipart form fields
(and the `Expires-In` header); the same for every file of a batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.config import Settings
from app.errors import ValidationFailed
from app.models import Visibility

FORM_FIELDS = frozenset({"title", "description", "visibility", "expires_in", "expires_at"})
MAX_TITLE = 200
MAX_DESCRIPTION = 2000
# Far enough for any real use, near enough that a timestamp never overflows.
MAX_EXPIRES_SECONDS = 100 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class UploadOptions:
    title: str | None = None
    description: str | None = None
    visibility: str = Visibility.UNLISTED
    expires_at: datetime | None = None


class _Problems:
    """Collects field errors in FastAPI's shape; raises them all at once."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, name: str, message: str, kind: str = "value_error") -> None:
        self.errors.append({"loc": ["body", name], "msg": message, "type": kind})

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationFailed(details={"errors": self.errors})


def parse_upload_options(
    fields: Mapping[str, str],
    expires_in_header: str | None,
    *,
    anonymous: bool,
    settings: Settings,
    now: datetime,
) -> UploadOptions:
    """The upload's options; 422 VALIDATION_ERROR naming every bad field."""
    problems = _Problems()
    title = _text(fields.get("title"), "title", MAX_TITLE, problems)
    description = _text(fields.get("description"), "description", MAX_DESCRIPTION, problems)
    visibility = (fields.get("visibility") or Visibility.UNLISTED).strip().lower()
    if visibility not in (Visibility.UNLISTED, Visibility.PRIVATE):
        problems.add("visibility", 'Must be "unlisted" or "private"')
    elif visibility == Visibility.PRIVATE and anonymous:
        problems.add("visibility", "Only a signed-in owner can see a private image")
    expires_at = _expiry(fields, expires_in_header, now, problems)
    if anonymous and not problems.errors:
        expires_at = _anonymous_expiry(expires_at, now, settings, problems)
    problems.raise_any()
    return UploadOptions(title, description, visibility, expires_at)


def _text(value: str | None, name: str, limit: int, problems: _Problems) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        problems.add(name, f"At most {limit} characters", "string_too_long")
    elif "\x00" in value:
        problems.add(name, "Must not contain NUL characters")
    return value or None


def _expiry(
    fields: Mapping[str, str], header: str | None, now: datetime, problems: _Problems
) -> datetime | None:
    # An empty form field (as HTML forms send them) is not given: the header counts then.
    expires_in = fields.get("expires_in") or header
    expires_at = fields.get("expires_at")
    if expires_in is not None and expires_in.strip() == "":
        expires_in = None
    if expires_at is not None and expires_at.strip() == "":
        expires_at = None
    if expires_in is not None and expires_at is not None:
        problems.add("expires_in", "Send expires_in or expires_at, not both")
        return None
    if expires_in is not None:
        return _after_seconds(expires_in, now, problems)
    if expires_at is not None:
        return _at(expires_at, now, problems)
    return None


def _after_seconds(value: str, now: datetime, problems: _Problems) -> datetime | None:
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        problems.add("expires_in", "A whole number of seconds", "int_parsing")
        return None
    seconds = int(text)
    if not 1 <= seconds <= MAX_EXPIRES_SECONDS:
        problems.add("expires_in", f"Between 1 and {MAX_EXPIRES_SECONDS} seconds")
        return None
    return now + timedelta(seconds=seconds)


def _at(value: str, now: datetime, problems: _Problems) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        problems.add("expires_at", "An ISO 8601 timestamp with its offset", "datetime_parsing")
        return None
    if moment.tzinfo is None:
        problems.add("expires_at", "The timestamp needs its offset (e.g. Z)")
        return None
    if moment <= now:
        problems.add("expires_at", "Must be in the future")
        return None
    if moment > now + timedelta(seconds=MAX_EXPIRES_SECONDS):
        problems.add("expires_at", "Too far in the future")
        return None
    return moment


def _anonymous_expiry(
    expires_at: datetime | None, now: datetime, settings: Settings, problems: _Problems
) -> datetime | None:
    """Anonymous uploads: the configured default when none is named, and never past the cap."""
    if expires_at is None and settings.anon_default_expires_seconds is not None:
        expires_at = now + timedelta(seconds=settings.anon_default_expires_seconds)
    cap = settings.anon_max_expires_seconds
    if cap is not None:
        if expires_at is None:
            return now + timedelta(seconds=cap)  # no default: the longest allowed
        if expires_at > now + timedelta(seconds=cap):
            problems.add("expires_in", f"Anonymous uploads expire within {cap} seconds")
    return expires_at
