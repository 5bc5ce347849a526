"""Tag rules (contract section 11): what a tag may be, and its one spelling.

A tag is NFKC-normalised, lower-cased, trimmed, with inner runs of whitespace collapsed
to one space; then 1 to 50 characters of letters (with their combining marks), digits,
space, `-` and `_`. Anything else is refused, never silently changed: a user who typed
`c++` should hear that it is not a tag rather than find `c` on the image.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from app.errors import ValidationFailed

MAX_TAG_CHARS = 50
MAX_USER_TAGS = 50
_PUNCTUATION = frozenset(" -_")


class InvalidTag(ValueError):
    """A tag that breaks the rules; the message names it."""


def _allowed(previous: str, char: str) -> bool:
    if char in _PUNCTUATION or char.isalnum():  # isalnum: letters and digits, any script
        return True
    # Combining marks only extend a letter: vowel signs of Indic scripts, say, but never
    # a lone variation selector (emoji presentation) or anything at the start.
    return unicodedata.category(char)[0] == "M" and previous != "" and previous not in _PUNCTUATION


def normalise_tag(raw: str) -> str:
    """The tag's one spelling; `InvalidTag` when it breaks the rules."""
    tag = " ".join(unicodedata.normalize("NFKC", raw).lower().split())
    if not tag:
        raise InvalidTag("A tag must not be empty")
    if len(tag) > MAX_TAG_CHARS:
        raise InvalidTag(f"Tag {tag[:60]!r} is longer than {MAX_TAG_CHARS} characters")
    previous = ""
    for char in tag:
        if not _allowed(previous, char):
            raise InvalidTag(
                f"Tag {tag!r} may only hold letters, digits, spaces, '-' and '_' (not {char!r})"
            )
        previous = char
    return tag


def tags_or_422(
    raw: Sequence[str], loc: Sequence[str | int], *, limit: int | None = MAX_USER_TAGS
) -> list[str]:
    """`normalise_tags(raw)`, or 422 VALIDATION_ERROR whose `details.errors` names every
    bad tag (at `loc` + its index)."""
    errors: list[dict[str, Any]] = []
    tags: list[str] = []
    for index, tag in enumerate(raw):
        try:
            tags.append(normalise_tag(tag))
        except InvalidTag as exc:
            errors.append(_error([*loc, index], str(exc), tag))
    tags = list(dict.fromkeys(tags))
    if not errors and limit is not None and len(tags) > limit:
        message = f"At most {limit} tags ({len(tags)} given)"
        errors.append(_error(list(loc), message, None, "too_long"))
    if errors:
        raise ValidationFailed(details={"errors": errors})
    return tags


def _error(
    loc: list[str | int], message: str, tag: str | None, kind: str = "value_error"
) -> dict[str, Any]:
    error: dict[str, Any] = {"loc": loc, "msg": message, "type": kind}
    if tag is not None:
        error["input"] = tag[:100]
    return error
