"""The tagger interface: what a tagger is given, what it answers, and how it fails."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from app.images.tags import InvalidTag, normalise_tag
from app.tagging.features import ImageFeatures


class TaggerError(Exception):
    """This attempt could not tag the image (a dependency failed or answered nonsense);
    the job tries again later, and after its last attempt marks the tags failed."""


class Pixels(Protocol):
    """The image's pixels, fetched only when a tagger asks (each costs I/O or CPU)."""

    async def features(self) -> ImageFeatures:
        """What `app.tagging.features` reads from the displayed image."""
        ...

    async def jpeg(self, max_side: int) -> bytes:
        """The displayed image (first frame) as a JPEG at most `max_side` pixels a side."""
        ...


@dataclass(frozen=True, slots=True)
class TagInput:
    width: int  # as displayed (orientation applied)
    height: int
    frames: int
    camera: bool  # its EXIF names a camera (make or model)
    pixels: Pixels


class Tagger(Protocol):
    async def tag(self, image: TagInput) -> list[str]:
        """The image's automatic tags, valid and at most the configured number;
        raises `TaggerError` when it cannot tell this time."""
        ...

    async def close(self) -> None: ...


def clean_tags(raw: Iterable[str], limit: int) -> list[str]:
    """The valid tags of `raw` in their one spelling (contract section 11), distinct, in
    order, at most `limit`; invalid ones are dropped, not refused: a tagger is no user."""
    tags: list[str] = []
    for candidate in raw:
        try:
            tag = normalise_tag(candidate)
        except InvalidTag:
            continue
        if tag not in tags:
            tags.append(tag)
        if len(tags) == limit:
            break
    return tags
