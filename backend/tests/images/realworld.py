"""Real-world and damaged files built by hand: APNGs, GIFs and PNGs as the wild has them."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from tests.images.factories import animated_gif, animated_webp, png_chunk, save, zero_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def rgb_rows(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """Compressed scanlines (filter 0) of a solid RGB frame."""
    row = b"\x00" + bytes(colour) * width
    return zlib.compress(row * height)


@dataclass(frozen=True)
class Frame:
    width: int
    height: int
    colour: tuple[int, int, int] = BLUE
    left: int = 0
    top: int = 0
    data: bytes | None = None  # compressed scanlines; default: solid `colour`

    def compressed(self) -> bytes:
        return (
            self.data if self.data is not None else rgb_rows(self.width, self.height, self.colour)
        )


def apng(
    canvas: tuple[int, int],
    frames: list[Frame],
    *,
    hidden_default: tuple[int, int, int] | None = None,
    declared: int | None = None,
    sequence: list[int] | None = None,
) -> bytes:
    """An 8-bit RGB APNG. With `hidden_default`, the default image (that colour) is not part
    of the animation; otherwise the first frame is the default image. `declared` is the
    acTL frame count, `sequence` overrides the fcTL/fdAT sequence numbers."""
    width, height = canvas
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    count = len(frames) if declared is None else declared
    chunks.append(png_chunk(b"acTL", struct.pack(">II", count, 0)))
    numbers = iter(sequence if sequence is not None else range(10_000))

    def control(frame: Frame) -> bytes:
        payload = struct.pack(
            ">IIIIIHHBB",
            next(numbers),
            frame.width,
            frame.height,
            frame.left,
            frame.top,
            1,
            10,
            0,
            0,
        )
        return png_chunk(b"fcTL", payload)

    rest = frames
    if hidden_default is not None:
        chunks.append(png_chunk(b"IDAT", rgb_rows(width, height, hidden_default)))
    else:
        chunks += [control(frames[0]), png_chunk(b"IDAT", frames[0].compressed())]
        rest = frames[1:]
    for frame in rest:
        chunks.append(control(frame))
        data = struct.pack(">I", next(numbers)) + frame.compressed()
        chunks.append(png_chunk(b"fdAT", data))
    chunks.append(png_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def apng_bomb(canvas: tuple[int, int], frames: int) -> bytes:
    """An APNG of `frames` black frames covering the canvas: a few kB per frame that all
    inflate to the whole canvas when validation checks them."""
    rows = zero_rows(*canvas)
    return apng(canvas, [Frame(*canvas, data=rows)] * frames)


def png_with_keyed_transparency(mode: str) -> bytes:
    """A PNG whose transparency is a tRNS colour key (grey, RGB) or palette entry: the left
    half is the key colour, so a thumbnail with alpha kept is half transparent."""
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    image.paste((200, 100, 50), (20, 0, 40, 20))
    if mode == "L":
        grey = image.convert("L")
        return save(grey, "PNG", transparency=grey.getpixel((0, 0)))
    if mode == "P":
        palette = image.quantize(4)
        return save(palette, "PNG", transparency=palette.getpixel((0, 0)))
    if mode == "I;16":
        wide = Image.new("I;16", (40, 20), 1000)
        wide.paste(60_000, (20, 0, 40, 20))
        return save(wide, "PNG", transparency=1000)
    return save(image, "PNG", transparency=(10, 20, 30))


def gif_with_frame_transparency() -> bytes:
    """A two-frame GIF: an opaque red first frame (disposed to the transparent background),
    then a frame whose left half is its transparent index: half transparent."""
    palette = [255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 759
    first = Image.new("P", (40, 20), 0)
    first.putpalette(palette)
    second = Image.new("P", (40, 20), 2)
    second.putpalette(palette)
    second.paste(1, (20, 0, 40, 20))
    one = save(first, "GIF", optimize=False)
    two = save(second, "GIF", optimize=False, transparency=2)
    header_end = 13 + 3 * 2 ** ((one[10] & 7) + 1)
    assert one[6:header_end] == two[6:header_end]  # the same palette (GIF87a vs GIF89a)
    # Disposal 2 (to the background, transparent here), 100 ms, an unused transparent index.
    restore = b"\x21\xf9\x04\x09\x0a\x00\x03\x00"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return two[:header_end] + loop + restore + one[header_end:-1] + two[header_end:-1] + b";"


def gif_with_a_damaged_last_frame(frames: int = 3) -> bytes:
    """An animated GIF whose last frame's LZW code size is out of range: the container is
    whole, the first frames decode, the last one does not."""
    from app.images.containers import gif

    data = bytearray(animated_gif(frames, (32, 24)))
    last = [b for b in gif.gif_blocks(bytes(data)) if b.kind == gif.GIF_IMAGE][-1]
    flags = data[last.start + 9]
    palette = 3 << ((flags & 7) + 1) if flags & 0x80 else 0
    data[last.start + 10 + palette] = 12  # LZW minimum code size: at most 8 is valid
    return bytes(data)


def gif_with_a_short_frame_control(frames: int = 3) -> bytes:
    """An animated GIF whose second frame's graphic control extension holds 1 byte instead
    of 4: the container is whole and the first frame decodes, but counting the frames
    (which reads each control block) fails."""
    data = animated_gif(frames, (32, 24))
    controls = [at for at in range(len(data)) if data.startswith(b"\x21\xf9\x04", at)]
    second = controls[1]
    return data[:second] + b"\x21\xf9\x01\x00\x00" + data[second + 8 :]


def webp_with_canvas(canvas: tuple[int, int], frames: int = 2) -> bytes:
    """An animated WebP of 4x4 frames whose VP8X canvas is patched to `canvas`."""
    data = bytearray(animated_webp(frames, (4, 4)))
    assert data[12:16] == b"VP8X"
    data[24:27] = (canvas[0] - 1).to_bytes(3, "little")
    data[27:30] = (canvas[1] - 1).to_bytes(3, "little")
    return bytes(data)


def gif_streams_back_to_back() -> bytes:
    """A red GIF whose trailer is missing, followed by a whole blue GIF: browsers show red."""
    red = save(Image.new("RGB", (16, 16), RED).convert("P"), "GIF")
    blue = save(Image.new("RGB", (24, 24), BLUE).convert("P"), "GIF")
    return red[:-1] + blue


def damage_crc(data: bytes, kind: bytes) -> bytes:
    """`data` with the CRC of its first `kind` chunk flipped."""
    at = data.index(kind) - 4
    (length,) = struct.unpack_from(">I", data, at)
    crc_at = at + 8 + length
    return data[:crc_at] + bytes(b ^ 0xFF for b in data[crc_at : crc_at + 4]) + data[crc_at + 4 :]


def mpo(first: tuple[int, int, int] = RED, second: tuple[int, int, int] = BLUE) -> bytes:
    """A two-picture MPO (stereo JPEG), as phones write them."""
    left, right = Image.new("RGB", (64, 48), first), Image.new("RGB", (64, 48), second)
    out = BytesIO()
    left.save(out, "MPO", save_all=True, append_images=[right])
    return out.getvalue()


def mean_colour(data: bytes) -> tuple[int, ...]:
    """The average RGBA of an image's first frame."""
    with Image.open(BytesIO(data)) as image:
        rgba = image.convert("RGBA")
    pixel = rgba.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)  # an RGBA pixel, never a single band
    return tuple(int(v) for v in pixel)
