"""The basic tagger on images with known content: the features the thumbnail job reads,
and the tags made from them."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from app.images.thumbnails import render
from app.jobs.tagging import features_of_original, jpeg_of_original, jpeg_of_thumbnail
from app.tagging.base import TagInput
from app.tagging.basic import BasicTagger
from app.tagging.features import COLOUR_NAMES, ImageFeatures, colour_name
from tests.tagging import pictures

pytestmark = pytest.mark.anyio
FORMATS = ("jpeg", "png", "webp", "gif")


class Rendered:
    """Pixels as a tag job sees them right after its thumbnail job: already read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.rendered = render(data, FORMATS)

    async def features(self) -> ImageFeatures:
        return self.rendered.features

    async def jpeg(self, max_side: int) -> bytes:
        return jpeg_of_thumbnail(self.rendered.thumbnails[0].data, max_side)


def _size(data: bytes) -> tuple[int, int, int]:
    with Image.open(BytesIO(data)) as image:
        return image.width, image.height, getattr(image, "n_frames", 1)


async def tags_of(data: bytes, *, camera: bool = False, max_tags: int = 5) -> list[str]:
    width, height, frames = _size(data)
    image = TagInput(width, height, frames, camera, Rendered(data))
    return await BasicTagger(max_tags).tag(image)


async def test_a_wide_camera_photo_is_a_landscape_photo() -> None:
    tags = await tags_of(pictures.photo((1200, 600)), camera=True)
    assert tags[:2] == ["landscape", "photo"]
    assert "screenshot" not in tags
    assert "transparent" not in tags


async def test_a_photo_without_camera_details_is_no_screenshot_either() -> None:
    tags = await tags_of(pictures.photo((600, 1200), camera=False))
    assert tags[0] == "portrait"
    assert "photo" not in tags
    assert "screenshot" not in tags


async def test_a_flat_colour_png_without_camera_is_a_screenshot() -> None:
    tags = await tags_of(pictures.screenshot())
    assert tags[:2] == ["landscape", "screenshot"]
    assert "white" in tags


async def test_camera_details_win_over_flat_colours() -> None:
    tags = await tags_of(pictures.screenshot(), camera=True)
    assert "photo" in tags
    assert "screenshot" not in tags


async def test_a_cutout_png_is_transparent_and_named_by_its_visible_colour() -> None:
    tags = await tags_of(pictures.cutout())
    assert tags == ["square", "transparent", "screenshot", "red"]


async def test_a_photo_cut_out_on_a_transparent_canvas_is_no_screenshot() -> None:
    tags = await tags_of(pictures.photo_cutout())
    assert tags[:2] == ["landscape", "transparent"]
    assert "screenshot" not in tags


async def test_an_opaque_png_is_not_transparent() -> None:
    assert "transparent" not in await tags_of(pictures.halves((0, 0, 200), (0, 0, 200)))


async def test_an_animated_gif_is_animated() -> None:
    tags = await tags_of(pictures.animated_gif())
    assert tags[:2] == ["square", "animated"]
    assert "white" in tags


async def test_two_dominant_colours_are_named_most_common_first() -> None:
    tags = await tags_of(pictures.halves((40, 170, 60), (250, 215, 0), size=(400, 500)))
    assert tags[0] == "portrait"
    assert set(tags[-2:]) == {"green", "yellow"}


async def test_a_square_within_five_percent() -> None:
    assert (await tags_of(pictures.halves((0, 0, 0), (0, 0, 0), size=(500, 520))))[0] == "square"
    assert (await tags_of(pictures.halves((0, 0, 0), (0, 0, 0), size=(500, 540))))[0] == "portrait"


async def test_the_tag_count_is_capped_and_colours_go_first() -> None:
    data = pictures.animated_gif()
    assert await tags_of(data, max_tags=2) == ["square", "animated"]


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 20, 30), "red"),
        ((250, 140, 10), "orange"),
        ((250, 220, 30), "yellow"),
        ((40, 170, 60), "green"),
        ((30, 90, 220), "blue"),
        ((120, 40, 180), "purple"),
        ((250, 150, 190), "pink"),
        ((120, 70, 20), "brown"),
        ((10, 10, 12), "black"),
        ((250, 250, 250), "white"),
        ((128, 128, 130), "gray"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert name in COLOUR_NAMES
    assert colour_name(*rgb) == name


def test_features_read_from_the_original_match_the_thumbnail_jobs() -> None:
    """The sweeper's path (no thumbnail job handed the features over) tags alike."""
    for data in (pictures.screenshot(), pictures.cutout(), pictures.animated_gif()):
        assert features_of_original(data, FORMATS, 50_000_000) == render(data, FORMATS).features


def test_features_travel_as_json_and_nothing_else_passes_for_them() -> None:
    features = render(pictures.cutout(), FORMATS).features
    assert ImageFeatures.from_hint(features.as_hint()) == features
    assert ImageFeatures.from_hint(None) is None
    assert ImageFeatures.from_hint({"transparent": "yes", "flat": 1, "colours": []}) is None
    assert ImageFeatures.from_hint({"transparent": True, "flat": 0.9, "colours": []}) is None
    assert ImageFeatures.from_hint({"transparent": True, "flat": True, "colours": ["teal"]}) is None


@pytest.mark.parametrize("source", ["thumbnail", "original"])
def test_the_reduced_jpeg_is_small_and_flattened(source: str) -> None:
    data = pictures.cutout((2000, 1000))
    if source == "thumbnail":
        jpeg = jpeg_of_thumbnail(render(data, FORMATS).thumbnails[0].data, 512)
    else:
        jpeg = jpeg_of_original(data, FORMATS, 50_000_000, 512)
    with Image.open(BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        assert image.size == (512, 256)
        assert image.getpixel((2, 2)) == (255, 255, 255)  # transparency on white
