"""Images with known content for the tagger's tests: photos, screenshots, cut-outs, GIFs."""

from __future__ import annotations

import random
from io import BytesIO
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

MAKE, MODEL = 0x010F, 0x0110


def _save(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def camera_exif() -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "Fujifilm"
    exif[MODEL] = "X-T5"
    return exif.tobytes()


def photo(size: tuple[int, int] = (1200, 600), *, camera: bool = True, seed: int = 3) -> bytes:
    """A photo-like JPEG: soft shapes over gradients and sensor grain (every pixel its own
    colour), with a camera's make and model in its EXIF when `camera`."""
    width, height = size
    image = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
        ),
    )
    draw = ImageDraw.Draw(image)
    rng = random.Random(seed)
    for _ in range(12):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(20, 200)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in "rgb"))
    image = image.filter(ImageFilter.GaussianBlur(4))
    grain = Image.merge("RGB", [Image.effect_noise(size, 30) for _ in "rgb"])
    image = Image.blend(image, grain, 0.2)
    params: dict[str, Any] = {"quality": 90}
    if camera:
        params["exif"] = camera_exif()
    return _save(image, "JPEG", **params)


def screenshot(size: tuple[int, int] = (1280, 800)) -> bytes:
    """A PNG of a desktop window: a light background, a dark title bar, a blue button,
    lines of text (antialiased, so many colours, on few pixels)."""
    width, height = size
    image = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 48), fill=(32, 33, 36))
    draw.rectangle((width - 260, height - 90, width - 40, height - 40), fill=(26, 115, 232))
    for line in range(24):
        draw.text(
            (40, 80 + 26 * line), "def tag(image): return honest_tags(image)  # ok", (30, 30, 30)
        )
    return _save(image, "PNG")


def cutout(
    size: tuple[int, int] = (400, 400), colour: tuple[int, int, int] = (220, 20, 30)
) -> bytes:
    """A PNG of a red disc on a fully transparent background."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    width, height = size
    ImageDraw.Draw(image).ellipse(
        (width // 6, height // 6, width * 5 // 6, height * 5 // 6), fill=(*colour, 255)
    )
    return _save(image, "PNG")


def photo_cutout(size: tuple[int, int] = (600, 400)) -> bytes:
    """A PNG of a photo-like disc (every pixel its own colour) on a transparent canvas."""
    with Image.open(BytesIO(photo(size, camera=False))) as shot:
        image = shot.convert("RGBA")
    mask = Image.new("L", size, 0)
    width, height = size
    ImageDraw.Draw(mask).ellipse(
        (width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=255
    )
    image.putalpha(mask)
    return _save(image, "PNG")


def halves(
    left: tuple[int, int, int], right: tuple[int, int, int], size: tuple[int, int] = (300, 500)
) -> bytes:
    """A PNG, left half one colour and right half another."""
    image = Image.new("RGB", size, left)
    ImageDraw.Draw(image).rectangle((size[0] // 2, 0, size[0], size[1]), fill=right)
    return _save(image, "PNG")


def animated_gif(frames: int = 4, size: tuple[int, int] = (120, 120)) -> bytes:
    """An animated GIF of a green square moving over white."""
    images = []
    for index in range(frames):
        frame = Image.new("RGB", size, (255, 255, 255))
        ImageDraw.Draw(frame).rectangle(
            (10 + 20 * index, 10, 60 + 20 * index, 110), fill=(20, 160, 40)
        )
        images.append(frame)
    return _save(images[0], "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
