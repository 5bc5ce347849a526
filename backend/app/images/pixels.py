"""Decoded pixels made ready to resize and encode as WebP: modes, transparency, colours.

Awkward modes (1-bit, palette with transparency, LA, CMYK, 16-bit, I, F) become RGB or
RGBA, so alpha survives and nothing is clipped to white; transparency is applied in
every form (alpha, palette index, grey and RGB colour keys, 16-bit keys); colours given
by an ICC profile are converted to sRGB.
"""

from __future__ import annotations

from io import BytesIO
from typing import cast

from PIL import Image, ImageCms, ImageMath

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def normal_mode(image: Image.Image) -> Image.Image:
    """RGB, RGBA, L or CMYK: the modes that resize well and convert to WebP correctly."""
    mode = image.mode
    key = image.info.get("transparency") if mode in ("1", "L", "RGB", "I", "I;16") else None
    if key is not None:
        return _keyed(image, key)
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "P":
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode.startswith("I;16"):
        return _scale_to_8bit(image.convert("I"), 0, 65535)
    if mode in ("I", "F"):
        low, high = cast(tuple[float, float], image.getextrema())  # one band: (min, max)
        if low >= 0 and high <= (1.0 if mode == "F" else 255):
            return _scale_to_8bit(image, 0, 1.0 if mode == "F" else 255)
        if mode == "I" and low >= 0 and high <= 65535:
            return _scale_to_8bit(image, 0, 65535)  # 16-bit samples (PNG, TIFF-like)
        return _scale_to_8bit(image, low, high)
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def _keyed(image: Image.Image, key: object) -> Image.Image:
    """An image with a colour key (PNG `tRNS` for grey or RGB) as RGBA, the key transparent."""
    if image.mode in ("I", "I;16"):
        if not isinstance(key, int):
            return normal_mode(_without_key(image.copy()))  # a malformed key: ignore it
        wide = image.convert("I")
        mask = ImageMath.lambda_eval(lambda args: (args["im"] != key) * 255, im=wide)
        assert isinstance(mask, Image.Image)
        grey = normal_mode(_without_key(wide))
        result = grey.convert("RGBA")
        result.putalpha(mask.convert("L"))
        return result
    return image.convert("RGBA")  # Pillow applies an 8-bit grey or RGB key when converting


def _without_key(image: Image.Image) -> Image.Image:
    image.info.pop("transparency", None)
    return image


def _scale_to_8bit(image: Image.Image, low: float, high: float) -> Image.Image:
    """Map [low, high] linearly onto 0..255 (16-bit data is not clipped to white)."""
    span = float(high - low) or 1.0
    return image.point(lambda value: (value - low) * (255 / span)).convert("L")


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """The image's colours in sRGB when `icc` is a usable profile; else the image as is."""
    if not icc or image.mode not in ("RGB", "RGBA", "L", "CMYK"):
        return image
    alpha = image.getchannel("A") if image.mode == "RGBA" else None
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image.convert("RGB") if alpha is not None else image,
            source,
            _SRGB,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken or mismatched profile: keep the numbers as they are
    assert converted is not None
    if alpha is not None:
        converted.putalpha(alpha)
    return converted
