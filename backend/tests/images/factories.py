"""Small in-memory images for tests: real ones made by Pillow, hostile ones built from bytes."""

from __future__ import annotations

import random
import struct
import zlib
from io import BytesIO
from typing import Any

from PIL import Image, ImageCms

GPS_IFD = 0x8825
ORIENTATION = 0x0112
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret location</rdf:RDF></x:xmpmeta>'
GPS = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)}


def srgb_profile() -> bytes:
    """An sRGB ICC profile, as a camera or editor would embed it."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def picture(size: tuple[int, int] = (64, 48), mode: str = "RGB", seed: int = 1) -> Image.Image:
    """A deterministic image with enough detail that lossy codecs keep real data."""
    rng = random.Random(seed)
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert(mode)
    for _ in range(8):
        x, y = rng.randrange(width), rng.randrange(height)
        image.paste(tuple(rng.randrange(256) for _ in mode), (x, y, x + 4, y + 4))
    return image


def exif_bytes(*, orientation: int | None = 6, gps: bool = True) -> bytes:
    """EXIF (with the "Exif" header) carrying a camera make, GPS and an orientation."""
    exif = Image.Exif()
    exif[0x010F] = "Chitram Camera"
    exif[0x0131] = "Editor 1.0"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if gps:
        exif.get_ifd(GPS_IFD).update(GPS)
    return exif.tobytes()


def orientation_only_exif(orientation: int = 6) -> bytes:
    """EXIF whose single tag is the orientation: nothing to strip from it."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def save(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


# --------------------------------------------------------------------------- JPEG


def jpeg(size: tuple[int, int] = (64, 48), **params: Any) -> bytes:
    return save(picture(size), "JPEG", quality=85, **params)


def jpeg_with_metadata(orientation: int | None = 6, size: tuple[int, int] = (64, 48)) -> bytes:
    """A phone photo: EXIF with GPS and orientation, XMP, ICC profile and a comment."""
    return jpeg(
        size,
        exif=exif_bytes(orientation=orientation),
        xmp=XMP,
        icc_profile=srgb_profile(),
        comment=b"shot at home",
    )


def cmyk_jpeg(size: tuple[int, int] = (40, 30)) -> bytes:
    """A CMYK print JPEG, whose Adobe APP14 segment decoders need for its colours."""
    return save(picture(size, "CMYK"), "JPEG", quality=90, exif=exif_bytes())


def progressive_jpeg(size: tuple[int, int] = (64, 48), **params: Any) -> bytes:
    return jpeg(size, progressive=True, **params)


def insert_jpeg_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """`data` with an extra segment right after SOI."""
    segment = bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def jfif_header(thumbnail: bytes = bytes(2 * 2 * 3)) -> bytes:
    """A JFIF APP0 payload (72 dpi) with a 2x2 RGB thumbnail, or none."""
    size = (2, 2) if thumbnail else (0, 0)
    return b"JFIF\x00\x01\x02\x01\x00\x48\x00\x48" + bytes(size) + thumbnail


def jpeg_with_jfif_thumbnail() -> bytes:
    """A JPEG whose JFIF segment carries a thumbnail (which could show a cropped-out part)."""
    data = jpeg()
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    return insert_jpeg_segment(data[:2] + data[app0_end:], 0xE0, jfif_header())


def jpeg_declaring(width: int, height: int) -> bytes:
    """A tiny real JPEG whose frame header claims another size (a decompression bomb)."""
    data = bytearray(jpeg((16, 16)))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


# --------------------------------------------------------------------------- PNG


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png(size: tuple[int, int] = (64, 48), mode: str = "RGB", **params: Any) -> bytes:
    return save(picture(size, mode), "PNG", **params)


def png_with_metadata(orientation: int | None = 6) -> bytes:
    """A PNG with tEXt, zTXt and iTXt (XMP) chunks, an eXIf with GPS, and an ICC profile."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Alice")
    info.add_text("Location", "48.85, 2.35", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return png(
        mode="RGBA",
        pnginfo=info,
        exif=exif_bytes(orientation=orientation),
        icc_profile=srgb_profile(),
    )


def apng(frames: int = 3, size: tuple[int, int] = (32, 24)) -> bytes:
    images = [picture(size, seed=seed) for seed in range(frames)]
    return save(images[0], "PNG", save_all=True, append_images=images[1:], duration=50)


def zero_rows(width: int, height: int) -> bytes:
    """Compressed scanlines of a black RGB image, streamed so they never sit in memory."""
    compressor, row = zlib.compressobj(1), b"\x00" * (1 + 3 * width)  # filter byte, pixels
    return b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()


def raw_png(width: int, height: int, *, extra: bytes = b"", idat: bytes | None = None) -> bytes:
    """A PNG built by hand: IHDR (8-bit RGB) declaring any size, IDAT, IEND."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", zero_rows(width, height) if idat is None else idat)
        + png_chunk(b"IEND", b"")
    )


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """The classic decompression bomb: a huge declared canvas and a tiny compressed body."""
    return raw_png(width, height, idat=zero_rows(width, 100))


def apng_declaring(frames: int, size: tuple[int, int] = (1_000, 1_000)) -> bytes:
    """A PNG whose animation control chunk claims `frames` frames."""
    control = png_chunk(b"acTL", struct.pack(">II", frames, 0))
    return raw_png(*size, extra=control, idat=zero_rows(size[0], 10))


# --------------------------------------------------------------------------- WebP


def webp(size: tuple[int, int] = (64, 48), mode: str = "RGB", **params: Any) -> bytes:
    return save(picture(size, mode), "WEBP", quality=80, **params)


def webp_with_metadata(orientation: int | None = 6, **params: Any) -> bytes:
    """An extended WebP with EXIF (GPS and orientation), XMP and an ICC profile."""
    return webp(
        exif=exif_bytes(orientation=orientation),
        xmp=XMP,
        icc_profile=srgb_profile(),
        **params,
    )


def animated_webp(frames: int = 3, size: tuple[int, int] = (32, 24), **params: Any) -> bytes:
    images = [picture(size, "RGBA", seed=seed) for seed in range(frames)]
    return save(images[0], "WEBP", save_all=True, append_images=images[1:], **params)


def riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def webp_declaring(width: int, height: int) -> bytes:
    """A WebP whose VP8X chunk claims a huge canvas around a tiny real frame."""
    simple = webp((16, 16))
    vp8x = riff_chunk(
        b"VP8X", bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + vp8x + simple[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --------------------------------------------------------------------------- GIF


def animated_gif(frames: int = 3, size: tuple[int, int] = (32, 24), **params: Any) -> bytes:
    images = [picture(size, seed=seed).convert("P") for seed in range(frames)]
    return save(images[0], "GIF", save_all=True, append_images=images[1:], loop=0, **params)


def animated_gif_with_comment(frames: int = 3) -> bytes:
    """An animated GIF with a comment extension and an XMP application extension."""
    data = animated_gif(frames, comment=b"made at 48.85N 2.35E")
    xmp = b"\x21\xff\x0bXMP DataXMP" + _sub_blocks(XMP) + b"\x00"
    trailer = data.rindex(b"\x3b")
    return data[:trailer] + xmp + data[trailer:]


def _sub_blocks(payload: bytes) -> bytes:
    return b"".join(bytes((len(part),)) + part for part in _parts(payload, 255))


def _parts(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def raw_gif(
    screen: tuple[int, int], frame: tuple[int, int] = (1, 1), trailer: bytes = b";"
) -> bytes:
    """A one-frame GIF built by hand, with any logical screen and frame size."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"," + struct.pack("<HHHHB", 0, 0, *frame, 0)
    lzw = b"\x02\x02\x44\x01\x00"  # code size 2; clear, index 0, end of information
    return header + image + lzw + trailer


def gif_with_screen(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A real one-frame GIF whose logical screen is patched to `screen`."""
    data = bytearray(save(picture(frame).convert("P"), "GIF"))
    struct.pack_into("<HH", data, 6, *screen)
    return bytes(data)


def gif_bomb(width: int = 65_535, height: int = 65_535) -> bytes:
    """A GIF whose logical screen is huge around a single tiny frame."""
    return raw_gif((width, height))


def gif_js_polyglot() -> bytes:
    """A valid GIF that is also valid JavaScript: `GIF89a/*...*/=alert(1);`."""
    gif = bytearray(raw_gif((0, 1), trailer=b";*/=alert(document.domain);//"))
    gif[6:8] = b"/*"  # the logical screen width opens a JS comment: 10799 px wide
    return bytes(gif)


def gif_with_tiny_sub_blocks(size: int) -> bytes:
    """A tiny GIF whose single comment spends `size` bytes in one-byte sub-blocks."""
    comment = b"\x21\xfe" + b"\x01A" * (size // 2) + b"\x00"
    gif = raw_gif((1, 1))
    return gif[: 13 + 6] + comment + gif[13 + 6 :]


# --------------------------------------------------------------------------- not images


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def bmp() -> bytes:
    return save(picture((8, 8)), "BMP")


def tiff() -> bytes:
    return save(picture((8, 8)), "TIFF")


def ico() -> bytes:
    return save(picture((16, 16)), "ICO")


def random_after_magic(magic: bytes, size: int = 2_000, seed: int = 7) -> bytes:
    return magic + random.Random(seed).randbytes(size)


MAGICS = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif": b"GIF89a",
    "webp": b"RIFF\x00\x10\x00\x00WEBP",
}


def bilevel_png(width: int, height: int) -> bytes:
    """A real, complete 1-bit PNG of any size: tiny on disk, one byte a pixel once decoded."""
    compressor, row = zlib.compressobj(9), b"\x00" * (1 + (width + 7) // 8)
    rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )
