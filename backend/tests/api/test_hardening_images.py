"""Real-world images: what browsers show is what we accept, serve and thumbnail.

Validation does not depend on the database, so these run on SQLite only.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.images import factories, realworld
from tests.images.realworld import BLUE, RED, Frame
from tests.support.flows import wait_for_thumbnails

pytestmark = pytest.mark.anyio
UPLOAD = "/api/v1/images/upload"


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


async def _post(client: httpx.AsyncClient, data: bytes, name: str = "x.png") -> httpx.Response:
    return await client.post(UPLOAD, files={"file": (name, data, "application/octet-stream")})


async def _accepted(client: httpx.AsyncClient, data: bytes, name: str = "x.png") -> dict[str, Any]:
    response = await _post(client, data, name)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _refused(client: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    response = await _post(client, data)
    assert response.status_code == 415, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "INVALID_FILE_FORMAT"
    return error


async def _thumbnail(client: httpx.AsyncClient, image_id: str) -> Image.Image:
    ready = await wait_for_thumbnails(client, image_id)
    assert ready["thumbnail_status"] == "ready", ready
    response = await client.get(ready["thumbnails"]["large"])
    assert response.status_code == 200
    return Image.open(BytesIO(response.content))


def _transparent_share(image: Image.Image) -> float:
    """The share of pixels of the current frame with alpha below 128 (0 without alpha)."""
    if "A" not in image.getbands():
        return 0.0
    alpha = image.getchannel("A").histogram()
    return sum(alpha[:128]) / (image.width * image.height)


def _colour(image: Image.Image) -> tuple[int, ...]:
    pixel = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


def _near(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(colour, expected, strict=False))


# --------------------------------------------------------------------------- 9


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (factories.raw_gif((7001, 7001)), "screen.gif"),
        (realworld.webp_with_canvas((7001, 7001)), "canvas.webp"),
    ],
    ids=["gif", "webp"],
)
async def test_a_huge_canvas_around_a_tiny_frame_is_thumbnailed_from_the_frame(
    client: httpx.AsyncClient, data: bytes, name: str
) -> None:
    """The 35-byte GIF of a 7001x7001 screen holding one pixel, and a 360-byte animated
    WebP of 4x4 frames on such a canvas: the thumbnail is the canvas as browsers show it
    (transparent around the frame), made from the frame alone
    (tests/images/test_hardening_thumbnails.py measures the memory)."""
    body = await _accepted(client, data, name)

    thumb = await _thumbnail(client, body["id"])
    assert thumb.size == (800, 800)
    assert _transparent_share(thumb) > 0.99


# --------------------------------------------------------------------------- 11


async def test_a_png_with_an_unknown_critical_chunk_is_refused(client: httpx.AsyncClient) -> None:
    """Browsers refuse a critical chunk they do not know, and stripping could not tell
    what it holds (here: a location), so the file is refused."""
    secret = factories.png_chunk(b"GPSd", b"48.8584N 2.2945E")
    error = await _refused(client, factories.raw_png(16, 16, extra=secret))
    assert "critical chunk" in error["message"]


# --------------------------------------------------------------------------- 13


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "I;16"])
async def test_colour_key_transparency_is_kept_in_thumbnails(
    client: httpx.AsyncClient, mode: str
) -> None:
    body = await _accepted(client, realworld.png_with_keyed_transparency(mode))

    thumb = await _thumbnail(client, body["id"])
    assert _transparent_share(thumb) == pytest.approx(0.5, abs=0.05)


async def test_per_frame_gif_transparency_is_kept_in_animated_thumbnails(
    client: httpx.AsyncClient,
) -> None:
    body = await _accepted(client, realworld.gif_with_frame_transparency(), "anim.gif")
    assert body["frames"] == 2

    thumb = await _thumbnail(client, body["id"])
    assert getattr(thumb, "n_frames", 1) == 2
    assert _transparent_share(thumb) == 0  # the first frame is opaque
    thumb.seek(1)
    assert _transparent_share(thumb) == pytest.approx(0.5, abs=0.05)


# --------------------------------------------------------------------------- 14


async def test_an_apng_hidden_default_image_is_neither_a_frame_nor_the_thumbnail(
    client: httpx.AsyncClient,
) -> None:
    frames = [Frame(32, 24, BLUE), Frame(32, 24, (0, 255, 0))]
    data = realworld.apng((32, 24), frames, hidden_default=RED)
    body = await _accepted(client, data)
    assert body["frames"] == 2

    thumb = await _thumbnail(client, body["id"])
    assert getattr(thumb, "n_frames", 1) == 2
    assert _near(_colour(thumb), BLUE)


async def test_an_apng_with_a_single_frame_after_a_hidden_default_image_shows_that_frame(
    client: httpx.AsyncClient,
) -> None:
    data = realworld.apng((32, 24), [Frame(32, 24, BLUE)], hidden_default=RED)
    body = await _accepted(client, data)
    assert body["frames"] == 1

    thumb = await _thumbnail(client, body["id"])
    assert _near(_colour(thumb), BLUE)


# --------------------------------------------------------------------------- 15


async def test_an_mpo_is_served_as_its_first_picture_with_one_frame(
    client: httpx.AsyncClient,
) -> None:
    body = await _accepted(client, realworld.mpo(RED, BLUE), "stereo.jpg")
    assert (body["content_type"], body["frames"]) == ("image/jpeg", 1)

    served = (await client.get(f"/api/v1/images/{body['id']}/file")).content
    with Image.open(BytesIO(served)) as image:
        assert image.format == "JPEG"  # not MPO: the second picture is gone
        assert _near(_colour(image), RED)
    assert served.count(b"\xff\xd8\xff") == 1
    thumb = await _thumbnail(client, body["id"])
    assert getattr(thumb, "n_frames", 1) == 1
    assert _near(_colour(thumb), RED)


# --------------------------------------------------------------------------- 16


def _screencast(frames: int, screen: tuple[int, int] = (640, 421)) -> bytes:
    """A screen recording as GIF encoders write it: a full first frame, then small
    frames holding only what changed."""
    first = factories.save(Image.new("RGB", screen, (240, 240, 240)).convert("P"), "GIF")
    header_end = 13 + 3 * 2 ** ((first[10] & 7) + 1)
    change = factories.raw_gif((1, 1))[19:-1]  # one 1x1 image block
    delta = bytearray(change)
    blocks = [first[header_end:-1]]
    for index in range(frames - 1):
        struct.pack_into("<HH", delta, 1, index % screen[0], index // screen[0])
        blocks.append(b"\x21\xf9\x04\x04\x02\x00\x00\x00" + bytes(delta))
    return first[:header_end] + b"".join(blocks) + b";"


async def test_a_long_screen_recording_is_accepted(client: httpx.AsyncClient) -> None:
    """783 frames of 640x421 (the reported file) and then some: only the first frame is
    decoded, so only the frame cap (10,000 by default) bounds the rest."""
    data = _screencast(1_500)
    body = await _accepted(client, data, "screencast.gif")
    assert (body["width"], body["height"], body["frames"]) == (640, 421, 1_500)
    assert (await wait_for_thumbnails(client, body["id"]))["thumbnail_status"] == "ready"


# --------------------------------------------------------------------------- 17


async def test_an_apng_whose_later_frame_does_not_inflate_is_refused(
    client: httpx.AsyncClient,
) -> None:
    broken = Frame(32, 24, data=realworld.rgb_rows(32, 24, BLUE)[:20])
    data = realworld.apng((32, 24), [Frame(32, 24, RED), Frame(32, 24), broken])
    error = await _refused(client, data)
    assert "frame 2" in error["message"]


async def test_an_apng_with_frames_out_of_sequence_is_refused(client: httpx.AsyncClient) -> None:
    frames = [Frame(32, 24, RED), Frame(32, 24), Frame(32, 24)]
    data = realworld.apng((32, 24), frames, sequence=[0, 1, 3, 2, 4])
    await _refused(client, data)


async def test_an_apng_frame_outside_its_canvas_is_refused(client: httpx.AsyncClient) -> None:
    frames = [Frame(32, 24, RED), Frame(16, 16, left=20, top=0)]
    await _refused(client, realworld.apng((32, 24), frames))


async def test_a_png_whose_idat_crc_is_wrong_is_refused(client: httpx.AsyncClient) -> None:
    error = await _refused(client, realworld.damage_crc(factories.png((32, 24)), b"IDAT"))
    assert "CRC" in error["message"]


async def test_a_gif_whose_last_frame_does_not_decode_gets_a_still_thumbnail(
    client: httpx.AsyncClient,
) -> None:
    """Validation decodes a GIF's first frame only (decoding the others means composing
    them all); browsers show the frames that decode, and so does the thumbnail."""
    body = await _accepted(client, realworld.gif_with_a_damaged_last_frame(), "anim.gif")

    thumb = await _thumbnail(client, body["id"])
    assert getattr(thumb, "n_frames", 1) == 1


async def test_a_gif_whose_frames_cannot_be_counted_gets_a_still_thumbnail(
    client: httpx.AsyncClient,
) -> None:
    """Pillow counts a GIF's frames by reading every control block; one too short for it
    must leave the first frame (which validation decoded) as the thumbnail, not a job
    that crashes on every attempt."""
    body = await _accepted(client, realworld.gif_with_a_short_frame_control(), "anim.gif")

    thumb = await _thumbnail(client, body["id"])
    assert getattr(thumb, "n_frames", 1) == 1


async def test_an_apng_looping_more_often_than_webp_can_say_gets_its_thumbnail(
    client: httpx.AsyncClient,
) -> None:
    data = bytearray(realworld.apng((32, 24), [Frame(32, 24, RED), Frame(32, 24, BLUE)]))
    at = data.index(b"acTL")
    data[at + 8 : at + 12] = struct.pack(">I", 2**24)  # num_plays; then fix the CRC
    data[at + 12 : at + 16] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 12])))
    body = await _accepted(client, bytes(data))

    thumb = await _thumbnail(client, body["id"])
    assert (getattr(thumb, "n_frames", 1), thumb.info.get("loop")) == (2, 0)


# --------------------------------------------------------------------------- 18


async def test_two_gif_streams_back_to_back_are_served_as_the_first(
    client: httpx.AsyncClient,
) -> None:
    data = realworld.gif_streams_back_to_back()
    body = await _accepted(client, data, "two.gif")
    assert (body["width"], body["height"], body["frames"]) == (16, 16, 1)

    served = (await client.get(f"/api/v1/images/{body['id']}/file")).content
    assert b"GIF89a" not in served[6:]  # the second stream is not served
    with Image.open(BytesIO(served)) as image:
        assert getattr(image, "n_frames", 1) == 1
        assert _near(_colour(image), RED)
    assert _near(_colour(await _thumbnail(client, body["id"])), RED)


@pytest.mark.parametrize(
    "declared", [2**31, 7], ids=["two-to-the-31-frames", "more-frames-than-there-are"]
)
async def test_an_apng_with_an_unusable_actl_is_a_still_image(
    client: httpx.AsyncClient, declared: int
) -> None:
    frames = [Frame(32, 24, RED), Frame(32, 24, BLUE)]
    body = await _accepted(client, realworld.apng((32, 24), frames, declared=declared))
    assert body["frames"] == 1

    thumb = await _thumbnail(client, body["id"])
    assert getattr(thumb, "n_frames", 1) == 1
    assert _near(_colour(thumb), RED)
