"""`TAGGER=basic`: tags the image itself shows, and nothing it would have to guess."""

from __future__ import annotations

from app.tagging.base import TagInput

SQUARE_RATIO = 1.05  # sides within 5% of each other


def shape(width: int, height: int) -> str:
    if max(width, height) <= SQUARE_RATIO * min(width, height):
        return "square"
    return "landscape" if width > height else "portrait"


class BasicTagger:
    """Shape, animation, transparency, photo (camera EXIF) or screenshot (no camera and
    a few exact colours over most pixels), and up to two dominant colour names; in that
    order of importance, so `max_tags` drops colours first."""

    def __init__(self, max_tags: int) -> None:
        self.max_tags = max_tags

    async def tag(self, image: TagInput) -> list[str]:
        features = await image.pixels.features()
        tags = [shape(image.width, image.height)]
        if image.frames > 1:
            tags.append("animated")
        if features.transparent:
            tags.append("transparent")
        if image.camera:
            tags.append("photo")
        elif features.flat:
            tags.append("screenshot")
        tags.extend(features.colours)
        return tags[: self.max_tags]

    async def close(self) -> None:
        return None
