"""What the library's forms send, made into the services' requests, and their refusals
made readable."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Form
from pydantic import ValidationError

from app.errors import AppError

# A form field: generous, since the services say what is too long in words; the body
# cap (64 KiB) bounds the whole form anyway.
Field = Annotated[str, Form(max_length=8192)]

# The expiry choices of the image form: seconds from now, by label.
EXPIRY_CHOICES = (
    ("never", "Never"),
    ("3600", "In 1 hour"),
    ("86400", "In 1 day"),
    ("604800", "In 1 week"),
    ("2592000", "In 30 days"),
    ("date", "On a date"),
)
KEEP = "keep"


class FormProblem(ValueError):
    """A form's value the person must correct; the message says how."""


def readable(errors: Iterable[Mapping[str, Any]]) -> str:
    """Validation errors as one sentence per field: "Title: at most 200 characters"."""
    parts = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        field = location[0].replace("_", " ").capitalize() if location else "Input"
        parts.append(f"{field}: {str(error.get('msg', '')).removeprefix('Value error, ')}")
    return "; ".join(parts)


def refusal(exc: Exception) -> str:
    """What a refused form should tell the person; an error that is not the form's fault
    (not found, not allowed, unavailable) goes on to the error page."""
    if isinstance(exc, FormProblem):
        return str(exc)
    if isinstance(exc, AppError) and exc.status_code not in (400, 422):
        raise exc
    if isinstance(exc, ValidationError):
        return readable(exc.errors())
    if not isinstance(exc, AppError):
        raise exc
    errors = exc.details.get("errors") if isinstance(exc.details, dict) else None
    return readable(errors) if errors else exc.detail_message


def tags_of(text: str) -> list[str]:
    """Comma-separated tags, as typed; empty entries dropped (the service normalises)."""
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def expiry_of(choice: str, on_date: str, now: datetime) -> tuple[bool, datetime | None]:
    """Whether the expiry changes, and to what: `keep` leaves it, `never` clears it, a
    number of seconds counts from now, `date` is the end of that day (UTC)."""
    if choice == KEEP:
        return False, None
    if choice == "never":
        return True, None
    if choice == "date":
        try:
            day = date.fromisoformat(on_date)
        except ValueError as exc:
            raise FormProblem("Expiry: choose a date") from exc
        return True, datetime.combine(day + timedelta(days=1), time(), UTC)
    if choice.isdigit() and choice in dict(EXPIRY_CHOICES):
        return True, now + timedelta(seconds=int(choice))
    raise FormProblem("Expiry: choose one of the options")


def image_ids_of(values: Iterable[str]) -> list[uuid.UUID]:
    """The selected images' ids; a tampered value is refused."""
    try:
        return [uuid.UUID(value) for value in values]
    except ValueError as exc:
        raise FormProblem("The selection is not valid; reload the page") from exc
