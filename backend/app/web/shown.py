"""Images as the pages show them.

A private image's bytes are refused to anyone but its owner, and the API never takes the
session cookie, so a page shows them through its own paths (`/i/{id}/file`,
`/i/{id}/thumbnail`), which do: the owner's browser sends its session there."""

from __future__ import annotations

from typing import Any

from app.images.schemas import ExifRead, ImageRead, Thumbnails, ThumbnailSize
from app.images.thumbnails import THUMBNAIL_SIZES, fit
from app.web.templates import aperture, exposure, focal_length, taken_at


def shown(image: ImageRead) -> ImageRead:
    """`image` with URLs its viewer's browser can open: the page paths for a private one."""
    if image.visibility != "private":
        return image
    page = image.page_url

    def thumbnail(size: ThumbnailSize, url: str | None) -> str | None:
        return f"{page}/thumbnail?size={size}" if url else None

    thumbs = image.thumbnails
    return image.model_copy(
        update={
            "url": f"{page}/file",
            "thumbnail_url": thumbnail("medium", image.thumbnail_url),
            "thumbnails": Thumbnails(
                small=thumbnail("small", thumbs.small),
                medium=thumbnail("medium", thumbs.medium),
                large=thumbnail("large", thumbs.large),
            ),
        }
    )


def tile(image: ImageRead) -> dict[str, Any]:
    """A gallery or album tile: the image as shown, and the box its small thumbnail fills."""
    return {
        **shown(image).model_dump(),
        "box": fit(image.width, image.height, THUMBNAIL_SIZES["small"]),
    }


def large_box(image: ImageRead) -> tuple[int, int]:
    return fit(image.width, image.height, THUMBNAIL_SIZES["large"])


def camera_rows(exif: ExifRead) -> list[tuple[str, str]]:
    """The owner's camera details as the Details panel lists them; absent ones left out."""
    make, model = exif.camera_make, exif.camera_model
    camera = model if make and model and model.lower().startswith(make.lower()) else None
    camera = camera or " ".join(part for part in (make, model) if part)
    rows = [
        ("Camera", camera),
        ("Lens", exif.lens),
        ("Taken", taken_at(exif.taken_at) if exif.taken_at else None),
        ("Exposure", exposure(exif.exposure_time) if exif.exposure_time else None),
        ("Aperture", aperture(exif.f_number) if exif.f_number else None),
        ("ISO", str(exif.iso) if exif.iso else None),
        ("Focal length", focal_length(exif.focal_length) if exif.focal_length else None),
    ]
    return [(label, value) for label, value in rows if value]


def user_tags(image: ImageRead) -> list[str]:
    """The tags the owner gave (the tagger's are listed apart, and stay)."""
    automatic = set(image.tags_auto)
    return [tag for tag in image.tags if tag not in automatic]
