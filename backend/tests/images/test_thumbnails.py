"""The thumbnail pipeline: sizes, orientation, awkward modes, alpha, animation, metadata."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from app.images import thumbnails
from app.images.pixels import normal_mode
from app.images.thumbnails import ThumbnailError, make_thumbnails
from tests.images import factories

FORMATS = ("jpeg", "png", "webp", "gif")
BOXES = {"large": 800, "medium": 300, "small": 150}


def _open(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    assert image.format == "WEBP"
    return image


def _by_size(data: bytes) -> dict[str, Image.Image]:
    return {thumb.size: _open(thumb.data) for thumb in make_thumbnails(data, FORMATS)}


def _two_halves(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: orientation mistakes move the colours."""
    image = Image.new(mode, size, (0, 0, 255) if mode == "RGB" else (0, 0, 255, 255))
    image.paste((255, 0, 0) if mode == "RGB" else (255, 0, 0, 255), (0, 0, size[0] // 2, size[1]))
    return image


def _near(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def test_three_sizes_fit_their_boxes_and_keep_the_aspect_ratio() -> None:
    thumbs = make_thumbnails(factories.jpeg((2400, 1600)), FORMATS)
    assert [(t.size, t.width, t.height) for t in thumbs] == [
        ("large", 800, 533),
        ("medium", 300, 200),
        ("small", 150, 100),
    ]
    for thumb in thumbs:
        assert _open(thumb.data).size == (thumb.width, thumb.height)


def test_small_images_are_never_upscaled() -> None:
    thumbs = _by_size(factories.png((120, 90)))
    assert {size: image.size for size, image in thumbs.items()} == {
        "large": (120, 90),
        "medium": (120, 90),
        "small": (120, 90),
    }


def test_large_jpeg_is_decoded_in_draft_mode_at_the_smallest_covering_scale() -> None:
    decoded_sizes: list[tuple[int, int]] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> object:
        result = original_draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("PIL.JpegImagePlugin.JpegImageFile.draft", spy)
        thumbs = make_thumbnails(factories.jpeg((4000, 3000)), FORMATS)
    # 1/4 scale covers 800x600; 1/8 (500x375) would not.
    assert decoded_sizes == [(1000, 750)]
    assert (thumbs[0].width, thumbs[0].height) == (800, 600)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_is_applied(orientation: int) -> None:
    exif = factories.orientation_only_exif(orientation)
    data = factories.save(_two_halves((400, 200)), "JPEG", quality=95, exif=exif)
    large = _by_size(data)["large"].convert("RGB")
    swapped = orientation in (6, 8)
    assert large.size == ((200, 400) if swapped else (400, 200))
    red, blue = (255, 0, 0), (0, 0, 255)
    first = large.getpixel((5, 5))  # top-left as displayed
    # 6 turns the stored left half (red) to the top, 8 to the bottom, 3 to the right.
    expected = {1: red, 3: blue, 6: red, 8: blue}[orientation]
    assert isinstance(first, tuple)
    assert _near(first, expected), (orientation, first)


def test_thumbnails_carry_no_metadata_at_all() -> None:
    for data in (
        factories.jpeg_with_metadata(),
        factories.png_with_metadata(),
        factories.webp_with_metadata(),
    ):
        for thumb in make_thumbnails(data, FORMATS):
            image = _open(thumb.data)
            assert not image.info.get("exif")
            assert not image.info.get("xmp")
            assert not image.info.get("icc_profile")
            assert b"EXIF" not in thumb.data
            assert b"XMP " not in thumb.data
            assert b"ICCP" not in thumb.data


def test_alpha_is_kept() -> None:
    image = Image.new("RGBA", (200, 100), (0, 255, 0, 0))
    image.paste((0, 255, 0, 255), (0, 0, 100, 100))
    small = _by_size(factories.save(image, "PNG"))["small"]
    assert small.mode == "RGBA"
    assert small.getpixel((10, 10))[3] == 255  # type: ignore[index]
    assert small.getpixel((140, 10))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "data", "mode", "pixel"),
    [
        ("1-bit", factories.save(Image.new("1", (64, 64), 1), "PNG"), "RGB", (255, 255, 255)),
        (
            "palette with transparency",
            factories.save(Image.new("RGBA", (64, 64), (255, 0, 0, 0)).convert("P"), "PNG"),
            "RGBA",
            None,
        ),
        ("LA", factories.save(Image.new("LA", (64, 64), (128, 0)), "PNG"), "RGBA", None),
        (
            "16-bit grey",
            factories.save(Image.new("I;16", (64, 64), 40_000), "PNG"),
            "RGB",
            (155, 155, 155),
        ),
        (
            "CMYK",
            factories.save(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"),
            "RGB",
            (255, 0, 0),
        ),
        (
            "palette GIF",
            factories.save(Image.new("RGB", (64, 64), (0, 0, 255)).convert("P"), "GIF"),
            "RGB",
            (0, 0, 255),
        ),
    ],
)
def test_awkward_modes_become_rgb_or_rgba_with_the_right_colours(
    name: str, data: bytes, mode: str, pixel: tuple[int, ...] | None
) -> None:
    for thumb in _by_size(data).values():
        assert thumb.mode == mode, name
        value = thumb.getpixel((5, 5))
        assert isinstance(value, tuple)
        if pixel is None:
            assert value[3] == 0, name  # fully transparent stays transparent
        else:
            assert _near(value, pixel, tolerance=12), (name, value)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("I", 40_000, 155),
        ("I", 100, 100),
        ("F", 0.5, 127),
        ("F", 3000.0, 255),
        ("I;16", 65_535, 255),
    ],
)
def test_integer_and_float_modes_are_scaled_not_clipped(
    mode: str, value: float, expected: int
) -> None:
    image = Image.new(mode, (8, 8), value)
    image.putpixel((0, 0), 0)
    normal = normal_mode(image)
    assert normal.mode == "L"
    assert abs(int(normal.getpixel((4, 4))) - expected) <= 1  # type: ignore[arg-type]


def test_colour_profiles_are_converted_to_srgb_and_dropped() -> None:
    # A profile that swaps nothing but is not sRGB: LAB-based conversion changes values.
    adobe_like = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    data = factories.save(Image.new("RGB", (64, 64), (200, 100, 50)), "PNG", icc_profile=adobe_like)
    for thumb in make_thumbnails(data, FORMATS):
        assert b"ICCP" not in thumb.data
    # A broken profile does not fail the thumbnail: the numbers are kept as they are.
    broken = factories.save(Image.new("RGB", (64, 64), (200, 100, 50)), "PNG", icc_profile=b"junk")
    large = _by_size(broken)["large"]
    assert _near(large.getpixel((5, 5)), (200, 100, 50), tolerance=8)  # type: ignore[arg-type]


@pytest.mark.parametrize("factory", [factories.animated_gif, factories.animated_webp])
def test_small_animations_stay_animated(factory: object) -> None:
    data = factory(frames=4, size=(320, 240))  # type: ignore[operator]
    for size, image in _by_size(data).items():
        assert getattr(image, "n_frames", 1) == 4, size
        assert image.size[0] <= BOXES[size]


def test_long_animations_get_a_first_frame_thumbnail() -> None:
    frames = thumbnails.ANIMATION_MAX_FRAMES + 1
    data = factories.animated_gif(frames=frames, size=(16, 16))
    for image in _by_size(data).values():
        assert getattr(image, "n_frames", 1) == 1


@pytest.mark.parametrize(
    "data",
    [
        factories.jpeg((300, 200))[:-400],  # truncated
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        b"not an image at all",
        factories.bmp(),  # a real image in a format that is not allowed
    ],
)
def test_damaged_or_disallowed_input_raises_thumbnail_error(data: bytes) -> None:
    with pytest.raises(ThumbnailError):
        make_thumbnails(data, FORMATS)


def test_only_the_allowed_formats_are_opened() -> None:
    with pytest.raises(ThumbnailError):
        make_thumbnails(factories.png(), ("jpeg",))


def test_images_the_operator_allowed_beyond_pillows_default_guard_are_thumbnailed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    data = factories.bilevel_png(10_000, 9_500)  # 95 MP: over Pillow's 89 MP warning
    thumbs = make_thumbnails(data, FORMATS, max_pixels=100_000_000)
    assert (thumbs[0].width, thumbs[0].height) == (800, 760)
