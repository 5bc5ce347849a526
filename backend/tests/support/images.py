"""Small valid images for API tests, made in memory."""

from __future__ import annotations

import io

from PIL import Image


def jpeg(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png(width: int = 32, height: int = 32, *, alpha: bool = True) -> bytes:
    buffer = io.BytesIO()
    mode, color = ("RGBA", (0, 128, 255, 128)) if alpha else ("RGB", (0, 128, 255))
    Image.new(mode, (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_jpeg(width: int, height: int, seed: int = 1) -> bytes:
    """A JPEG that does not compress away: about width*height/3 bytes at quality 90."""
    import random

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
