"""What the basic tagger needs to know about an image's pixels, read in one cheap pass.

`features_of` looks at the large rendition the thumbnail job has just made (at most
800 px, sRGB, the right way up, RGB or RGBA, not yet encoded), so it costs no decode of
its own: about a millisecond. It must see lossless pixels: "exact-colour-dominant" means
the very same RGB values, which a lossy WebP thumbnail would smear. The thumbnail job
hands the result to the tag job as a plain JSON mapping (`as_hint`, `from_hint`).
"""

from __future__ import annotations

import colorsys
import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from PIL import Image

# A pixel a quarter see-through or more is transparent; fewer than this share of them is
# a stray speck (an antialiased edge), not a transparent image.
SEE_THROUGH_ALPHA = 192
MIN_TRANSPARENT_SHARE = 0.001
# Pixels at most half opaque have no colour worth naming.
OPAQUE_ALPHA = 128
# Nearest-neighbour samples a side for the exact-colour count: picks real pixels, never
# blends. 64 x 64 samples put a share within about 1.5% of the whole image's.
EXACT_SAMPLES = 64
FLAT_TOP_COLOURS = 3  # "exact-colour-dominant": these few colours cover ...
FLAT_SHARE = 0.5  # ... more than half of the pixels
# An averaged miniature for colour names (averaging is what the eye does too), its
# colours looked up at 4 bits a channel: at most 32 x 32 lookups, no colour maths.
COLOUR_BOX = 32
_LEVEL_BITS = 4
DOMINANT_SHARE = 0.25  # a colour name needs this share of the opaque pixels
MAX_COLOURS = 2
COLOUR_NAMES = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "gray",
)


@dataclass(frozen=True, slots=True)
class ImageFeatures:
    transparent: bool  # some meaningful part of it is see-through
    flat: bool  # its FLAT_TOP_COLOURS most common exact colours cover most visible pixels
    colours: tuple[str, ...]  # dominant colour names, the most common first

    def as_hint(self) -> dict[str, object]:
        """A JSON-able form, to travel with a queued job."""
        return {"transparent": self.transparent, "flat": self.flat, "colours": list(self.colours)}

    @classmethod
    def from_hint(cls, hint: Mapping[str, object] | None) -> ImageFeatures | None:
        """The features `as_hint` wrote; None for anything else (an old or foreign job)."""
        if hint is None:
            return None
        transparent, flat, colours = hint.get("transparent"), hint.get("flat"), hint.get("colours")
        if not isinstance(transparent, bool) or not isinstance(flat, bool):
            return None
        if not isinstance(colours, list) or not all(c in COLOUR_NAMES for c in colours):
            return None
        return cls(transparent, flat, tuple(colours[:MAX_COLOURS]))


def features_of(image: Image.Image) -> ImageFeatures:
    """The features of a decoded RGB or RGBA image (the large rendition)."""
    # A new image (convert copies, even to the same mode): `_flat` paints on it.
    sample = _fit(image, EXACT_SAMPLES, Image.Resampling.NEAREST).convert("RGBA")
    return ImageFeatures(
        transparent=_transparent(image) if image.mode == "RGBA" else False,
        flat=_flat(sample),
        colours=_dominant_colours(_miniature(image).convert("RGBA")),
    )


def _transparent(image: Image.Image) -> bool:
    alpha = image.getchannel("A")
    low, _ = cast(tuple[int, int], alpha.getextrema())
    if low >= SEE_THROUGH_ALPHA:
        return False
    histogram = alpha.histogram()
    see_through = sum(histogram[:SEE_THROUGH_ALPHA])
    return see_through >= MIN_TRANSPARENT_SHARE * image.width * image.height


def _flat(sample: Image.Image) -> bool:
    """Whether a few exact colours cover more than FLAT_SHARE of the visible pixels (the
    see-through ones are no colour: a cut-out photo on a transparent canvas is a photo)."""
    alpha = sample.getchannel("A")
    sample.paste((0, 0, 0, 0), mask=alpha.point(_SEE_THROUGH_MASK))  # one colour for them all
    # When the top colours cover more than half, the rest is less than half of the pixels,
    # so there are fewer distinct colours than this: more, and Pillow stops counting early.
    most = int(sample.width * sample.height * (1 - FLAT_SHARE)) + FLAT_TOP_COLOURS + 1
    colours = sample.getcolors(most)
    if colours is None:
        return False
    counts = sorted(
        (count for count, pixel in colours if cast(tuple[int, ...], pixel)[3] >= OPAQUE_ALPHA),
        reverse=True,
    )
    return sum(counts[:FLAT_TOP_COLOURS]) > FLAT_SHARE * sum(counts)


_SEE_THROUGH_MASK = [255 if level < OPAQUE_ALPHA else 0 for level in range(256)]


def _miniature(image: Image.Image) -> Image.Image:
    """At most COLOUR_BOX a side, each pixel the average of 16 samples of the part it
    covers (averaging all of an 800 px RGBA image costs ten times more, for nothing a
    colour name would show)."""
    samples = _fit(image, 4 * COLOUR_BOX, Image.Resampling.NEAREST)
    return _fit(samples, COLOUR_BOX, Image.Resampling.BOX)


def _dominant_colours(small: Image.Image) -> tuple[str, ...]:
    names: Counter[str] = Counter()
    for count, pixel in small.getcolors(small.width * small.height) or []:
        red, green, blue, alpha = cast(tuple[int, int, int, int], pixel)
        if alpha >= OPAQUE_ALPHA:
            names[_cell_name(red, green, blue)] += count
    opaque = sum(names.values())
    return tuple(
        name for name, count in names.most_common(MAX_COLOURS) if count >= DOMINANT_SHARE * opaque
    )


def _fit(image: Image.Image, box: int, resample: Image.Resampling) -> Image.Image:
    if image.width <= box and image.height <= box:
        return image
    scale = box / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, resample)


def colour_name(red: int, green: int, blue: int) -> str:
    """The name, from `COLOUR_NAMES`, that a person would give this sRGB colour."""
    hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    degrees = hue * 360
    if value < 0.2:
        return "black"
    if saturation < 0.15 or (saturation < 0.25 and value < 0.35):
        return "white" if value > 0.85 else "gray"
    if 15 <= degrees < 45 and value < 0.6:
        return "brown"  # a dark orange
    if degrees < 15 or degrees >= 345:
        return "pink" if saturation < 0.5 and value > 0.75 else "red"
    return _BY_HUE[next(i for i, edge in enumerate(_HUE_EDGES) if degrees < edge)]


def _cell_name(red: int, green: int, blue: int) -> str:
    """The name of the colour's cell, 4 bits a channel."""
    return _name_of_cell(red >> _LEVEL_BITS, green >> _LEVEL_BITS, blue >> _LEVEL_BITS)


@functools.cache
def _name_of_cell(red: int, green: int, blue: int) -> str:
    """The name of a cell's middle colour, worked out once per cell (4,096 at most)."""
    half = 1 << (_LEVEL_BITS - 1)
    return colour_name(*((level << _LEVEL_BITS) + half for level in (red, green, blue)))


# Hue bands, in degrees, for the saturated colours not settled above.
_HUE_EDGES = (45, 70, 165, 255, 290, 345)
_BY_HUE = ("orange", "yellow", "green", "blue", "purple", "pink")
