"""Metadata stripping: location and identity leave, pixels, orientation and colour stay."""

from __future__ import annotations

import contextlib
import random
import struct
import zlib
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from PIL import Image, ImageSequence

from app.images.containers import strip_metadata
from app.images.containers.jpeg import jpeg_segments
from app.images.containers.png import png_chunks
from app.images.containers.webp import webp_chunks
from app.images.errors import ImageTooLarge, InvalidFileFormat
from app.images.validation import ImageInfo, probe
from tests.images import factories as f

SECRETS = (b"secret location", b"Chitram Camera", b"Editor 1.0", b"Alice", b"48.85")


def probe_defaults(data: bytes) -> ImageInfo:
    return probe(
        data,
        allowed_formats=("jpeg", "png", "webp", "gif"),
        max_pixels=50_000_000,
        max_side=30_000,
        max_frames=1_000,
    )


def frames(data: bytes) -> list[bytes]:
    """The decoded pixels of every frame."""
    with Image.open(BytesIO(data)) as image:
        return [frame.convert("RGBA").tobytes() for frame in ImageSequence.Iterator(image)]


def first_frame(data: bytes) -> bytes:
    with Image.open(BytesIO(data)) as image:
        return image.convert("RGBA").tobytes()


def info(data: bytes) -> dict[Any, Any]:
    with Image.open(BytesIO(data)) as image:
        image.load()
        return dict(image.info)


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(BytesIO(data)) as image:
        return image.getexif()


def assert_no_secrets(data: bytes) -> None:
    leaked = [secret for secret in SECRETS if secret in data]
    assert not leaked


def assert_only_orientation(data: bytes, orientation: int) -> None:
    exif = exif_of(data)
    assert dict(exif) == {f.ORIENTATION: orientation}
    assert exif.get_ifd(f.GPS_IFD) == {}


def jpeg_scan_data(data: bytes) -> bytes:
    """Everything from the first SOS marker to EOI: the compressed pixels."""
    first_scan = next(s.start for s in jpeg_segments(data) if s.marker == 0xDA)
    return data[first_scan : data.rindex(b"\xff\xd9") + 2]


def jpeg_markers(data: bytes) -> list[int]:
    return [s.marker for s in jpeg_segments(data) if s.marker >= 0]


def png_chunk_types(data: bytes) -> list[bytes]:
    return [c.type for c in png_chunks(data)]


def png_idat(data: bytes) -> bytes:
    return b"".join(data[c.start : c.end] for c in png_chunks(data) if c.type == b"IDAT")


def webp_chunk(data: bytes, fourcc: bytes) -> bytes | None:
    found = [data[c.start : c.end] for c in webp_chunks(data) if c.fourcc == fourcc]
    return found[0] if found else None


# --------------------------------------------------------------------------- JPEG


def test_jpeg_keeps_orientation_and_profile_and_loses_gps_xmp_and_comments() -> None:
    original = f.jpeg_with_metadata(orientation=6)

    stripped = strip_metadata(original, "jpeg")

    assert_only_orientation(stripped, 6)
    assert_no_secrets(stripped)
    assert {"xmp", "comment"}.isdisjoint(info(stripped))
    assert info(stripped)["icc_profile"] == info(original)["icc_profile"]


def test_jpeg_pixels_and_scan_data_are_untouched() -> None:
    original = f.jpeg_with_metadata()

    stripped = strip_metadata(original, "jpeg")

    assert frames(stripped) == frames(original)
    assert jpeg_scan_data(stripped) == jpeg_scan_data(original)


def test_progressive_jpeg_keeps_every_scan_and_the_tables_between_them() -> None:
    original = f.progressive_jpeg(exif=f.exif_bytes(), comment=b"home")

    stripped = strip_metadata(original, "jpeg")

    assert jpeg_scan_data(stripped) == jpeg_scan_data(original)
    assert frames(stripped) == frames(original)


def test_jpeg_exif_without_orientation_goes_entirely() -> None:
    stripped = strip_metadata(f.jpeg_with_metadata(orientation=None), "jpeg")

    assert "exif" not in info(stripped)
    assert 0xE1 not in jpeg_markers(stripped)


def test_cmyk_jpeg_keeps_its_adobe_segment_and_colours() -> None:
    original = f.cmyk_jpeg()

    stripped = strip_metadata(original, "jpeg")

    assert 0xEE in jpeg_markers(stripped)
    assert info(stripped)["adobe_transform"] == info(original)["adobe_transform"]
    assert frames(stripped) == frames(original)
    assert_only_orientation(stripped, 6)


IDENTIFYING_SEGMENTS = [
    (0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0csecret location"),
    (0xE1, b"http://ns.adobe.com/xmp/extension/\x00" + f.XMP),
    (0xE2, b"FPXR\x00\x00secret location"),  # FlashPix: APP2 but no colour profile
    (0xE3, b"Meta\x00secret location"),
    (0xEB, b"JP\x00\x00JUMBF c2pa secret location"),
    (0xEF, b"Ducky\x00secret location"),
    (0xE0, b"JFXX\x00\x10secret location"),
    (0xFE, b"secret location"),
]


def test_jpeg_drops_every_segment_that_can_identify() -> None:
    original = f.jpeg_with_metadata()
    for marker, payload in reversed(IDENTIFYING_SEGMENTS):
        original = f.insert_jpeg_segment(original, marker, payload)

    stripped = strip_metadata(original, "jpeg")

    assert_no_secrets(stripped)
    assert_only_orientation(stripped, 6)
    kept = {m for m in jpeg_markers(stripped) if 0xE0 <= m <= 0xEF or m == 0xFE}
    assert kept == {0xE0, 0xE1, 0xE2}  # JFIF, orientation-only EXIF, ICC profile
    assert frames(stripped) == frames(original)


def test_only_the_first_exif_segment_counts() -> None:
    original = f.jpeg_with_metadata(orientation=6)
    tables = original.index(b"\xff\xdb")
    second = f.insert_jpeg_segment(b"\xff\xd8", 0xE1, f.exif_bytes(orientation=3))[2:]

    stripped = strip_metadata(original[:tables] + second + original[tables:], "jpeg")

    assert jpeg_markers(stripped).count(0xE1) == 1
    assert_only_orientation(stripped, 6)


def test_multi_chunk_icc_profiles_are_kept_whole() -> None:
    profile = f.srgb_profile() * 250  # over 64 KiB: split across several APP2 segments
    original = f.jpeg(icc_profile=profile, exif=f.exif_bytes())

    stripped = strip_metadata(original, "jpeg")

    assert jpeg_markers(stripped).count(0xE2) > 1
    assert info(stripped)["icc_profile"] == profile


def test_a_jfif_thumbnail_goes_but_the_jfif_header_stays() -> None:
    original = f.jpeg_with_jfif_thumbnail()

    stripped = strip_metadata(original, "jpeg")

    app0 = next(s for s in jpeg_segments(stripped) if s.marker == 0xE0)
    assert app0.payload(stripped) == f.jfif_header(thumbnail=b"")
    assert frames(stripped) == frames(original)


def test_jpeg_loses_whatever_follows_its_end() -> None:
    original = f.jpeg()
    appended = f.insert_jpeg_segment(f.jpeg(), 0xE1, f.exif_bytes())  # like an MPO's 2nd image

    stripped = strip_metadata(original + appended, "jpeg")

    assert stripped == original


# --------------------------------------------------------------------------- PNG


def test_png_loses_text_chunks_and_gps_but_keeps_orientation_and_profile() -> None:
    original = f.png_with_metadata(orientation=6)

    stripped = strip_metadata(original, "png")

    assert_only_orientation(stripped, 6)
    assert_no_secrets(stripped)
    assert {b"tEXt", b"zTXt", b"iTXt"}.isdisjoint(png_chunk_types(stripped))
    assert info(stripped)["icc_profile"] == info(original)["icc_profile"]


def test_png_pixels_and_compressed_data_are_untouched() -> None:
    original = f.png_with_metadata()

    stripped = strip_metadata(original, "png")

    assert frames(stripped) == frames(original)
    assert png_idat(stripped) == png_idat(original)


def test_png_exif_is_rewritten_with_a_valid_crc() -> None:
    stripped = strip_metadata(f.png_with_metadata(orientation=8), "png")

    chunk = next(c for c in png_chunks(stripped) if c.type == b"eXIf")
    (crc,) = struct.unpack(">I", stripped[chunk.end - 4 : chunk.end])
    assert crc == zlib.crc32(stripped[chunk.start + 4 : chunk.end - 4])


def test_png_keeps_colour_and_time_chunks_and_drops_private_ones() -> None:
    extra = (
        f.png_chunk(b"gAMA", struct.pack(">I", 45455))
        + f.png_chunk(b"tIME", struct.pack(">HBBBBB", 2026, 11, 22, 9, 0, 0))
        + f.png_chunk(b"caBX", b"c2pa manifest: secret location")
        + f.png_chunk(b"prVt", b"secret location")
    )
    original = f.raw_png(4, 3, extra=extra)

    stripped = strip_metadata(original, "png")

    assert png_chunk_types(stripped) == [b"IHDR", b"gAMA", b"tIME", b"IDAT", b"IEND"]
    assert frames(stripped) == frames(original)


def test_apng_keeps_every_frame() -> None:
    original = f.apng(3)
    text = f.png_chunk(b"tEXt", b"Comment\x00secret location")
    first_chunk_end = 8 + 25
    tagged = original[:first_chunk_end] + text + original[first_chunk_end:]

    stripped = strip_metadata(tagged, "png")

    assert stripped == original
    assert len(frames(stripped)) == 3


def test_png_loses_whatever_follows_iend() -> None:
    original = f.png()

    assert strip_metadata(original + b"<html><script>alert(1)</script>", "png") == original


# --------------------------------------------------------------------------- WebP


def test_webp_keeps_orientation_and_profile_and_loses_gps_and_xmp() -> None:
    original = f.webp_with_metadata(orientation=6)

    stripped = strip_metadata(original, "webp")

    assert_only_orientation(stripped, 6)
    assert_no_secrets(stripped)
    assert "xmp" not in info(stripped)
    assert info(stripped)["icc_profile"] == info(original)["icc_profile"]


def test_webp_pixels_and_bitstream_are_untouched() -> None:
    original = f.webp_with_metadata()

    stripped = strip_metadata(original, "webp")

    assert frames(stripped) == frames(original)
    assert webp_chunk(stripped, b"VP8 ") == webp_chunk(original, b"VP8 ")


@pytest.mark.parametrize(("orientation", "exif_flag"), [(6, 0x08), (None, 0)])
def test_webp_header_flags_and_size_match_the_chunks_left(
    orientation: int | None, exif_flag: int
) -> None:
    stripped = strip_metadata(f.webp_with_metadata(orientation=orientation), "webp")

    vp8x = webp_chunk(stripped, b"VP8X")
    assert vp8x is not None
    assert vp8x[8] & 0x3C == 0x20 | exif_flag  # ICC kept, no alpha, EXIF as left, no XMP
    assert (webp_chunk(stripped, b"EXIF") is not None) == bool(exif_flag)
    assert webp_chunk(stripped, b"XMP ") is None
    assert struct.unpack("<I", stripped[4:8])[0] == len(stripped) - 8
    assert ("exif" in info(stripped)) == bool(exif_flag)


def test_lossless_webp_with_alpha_keeps_its_pixels() -> None:
    original = f.webp_with_metadata(lossless=True)

    stripped = strip_metadata(original, "webp")

    assert frames(stripped) == frames(original)
    assert webp_chunk(stripped, b"VP8L") == webp_chunk(original, b"VP8L")


def test_animated_webp_keeps_every_frame() -> None:
    original = f.animated_webp(3, exif=f.exif_bytes(), xmp=f.XMP)

    stripped = strip_metadata(original, "webp")

    assert_no_secrets(stripped)
    assert frames(stripped) == frames(original)
    assert len(frames(stripped)) == 3


def test_webp_loses_whatever_follows_its_riff_size() -> None:
    original = f.webp()

    assert strip_metadata(original + b"<svg onload=alert(1)>", "webp") == original


# --------------------------------------------------------------------------- GIF


def test_gif_loses_comments_and_xmp_but_keeps_its_loop_and_frames() -> None:
    original = f.animated_gif_with_comment(3)

    stripped = strip_metadata(original, "gif")

    assert_no_secrets(stripped)
    assert b"XMP DataXMP" not in stripped
    assert "comment" not in info(stripped)
    assert info(stripped)["loop"] == 0
    assert frames(stripped) == frames(original)


def test_gif_javascript_polyglot_loses_its_script() -> None:
    polyglot = f.gif_js_polyglot()

    stripped = strip_metadata(polyglot, "gif")

    assert b"alert" not in stripped
    assert stripped.endswith(b";")
    assert frames(stripped) == frames(polyglot)


# --------------------------------------------------------------------------- identity


NOTHING_TO_STRIP: dict[str, tuple[str, Callable[[], bytes]]] = {
    "jpeg": ("jpeg", f.jpeg),
    "jpeg-orientation": ("jpeg", lambda: f.jpeg(exif=f.orientation_only_exif(6))),
    "jpeg-icc": ("jpeg", lambda: f.jpeg(icc_profile=f.srgb_profile())),
    "cmyk": ("jpeg", lambda: f.save(f.picture(mode="CMYK"), "JPEG")),
    "progressive": ("jpeg", f.progressive_jpeg),
    "png": ("png", f.png),
    "png-orientation": ("png", lambda: f.png(exif=f.orientation_only_exif(3))),
    "png-icc": ("png", lambda: f.png(icc_profile=f.srgb_profile())),
    "apng": ("png", f.apng),
    "webp": ("webp", f.webp),
    "webp-orientation": ("webp", lambda: f.webp(exif=f.orientation_only_exif(8))),
    "webp-icc": ("webp", lambda: f.webp(icc_profile=f.srgb_profile())),
    "webp-lossless": ("webp", lambda: f.webp(lossless=True)),
    "webp-animated": ("webp", f.animated_webp),
    "gif": ("gif", f.animated_gif),
}


@pytest.mark.parametrize(("fmt", "make"), NOTHING_TO_STRIP.values(), ids=NOTHING_TO_STRIP.keys())
def test_a_file_with_nothing_to_strip_comes_back_as_the_same_object(
    fmt: str, make: Callable[[], bytes]
) -> None:
    original = make()

    assert strip_metadata(original, fmt) is original


WITH_METADATA: dict[str, tuple[str, Callable[[], bytes]]] = {
    "jpeg": ("jpeg", f.jpeg_with_metadata),
    "cmyk": ("jpeg", f.cmyk_jpeg),
    "png": ("png", f.png_with_metadata),
    "webp": ("webp", f.webp_with_metadata),
    "gif": ("gif", f.animated_gif_with_comment),
}


@pytest.mark.parametrize(("fmt", "make"), WITH_METADATA.values(), ids=WITH_METADATA.keys())
def test_stripping_twice_changes_nothing_more(fmt: str, make: Callable[[], bytes]) -> None:
    once = strip_metadata(make(), fmt)

    assert strip_metadata(once, fmt) is once


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(("fmt", "make"), WITH_METADATA.values(), ids=WITH_METADATA.keys())
def test_containers_cut_inside_their_headers_are_refused(
    fmt: str, make: Callable[[], bytes]
) -> None:
    with pytest.raises(InvalidFileFormat):
        strip_metadata(make()[:30], fmt)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "gif"])
def test_bytes_of_another_format_are_refused(fmt: str) -> None:
    with pytest.raises(InvalidFileFormat):
        strip_metadata(f.SVG, fmt)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidFileFormat):
        strip_metadata(f.bmp(), "bmp")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """`data` truncated, or with a few bytes overwritten, or both."""
    mutated = bytearray(data[: rng.randrange(1, len(data) + 1)] if rng.random() < 0.4 else data)
    for _ in range(rng.randint(0 if len(mutated) < len(data) else 1, 4)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return bytes(mutated)


@pytest.mark.parametrize(("fmt", "make"), WITH_METADATA.values(), ids=WITH_METADATA.keys())
def test_damaged_files_fail_cleanly_or_strip_to_the_same_pixels(
    fmt: str, make: Callable[[], bytes]
) -> None:
    rng, original = random.Random(f"chitram-{fmt}"), make()
    for _ in range(100):
        damaged = mutate(original, rng)
        try:
            probed = probe_defaults(damaged)
        except (InvalidFileFormat, ImageTooLarge):
            with contextlib.suppress(InvalidFileFormat):
                strip_metadata(damaged, fmt)  # refusing is fine; any other error is not
            continue
        stripped = strip_metadata(damaged, fmt)
        assert probe_defaults(stripped) == probed
        assert first_frame(stripped) == first_frame(damaged)
