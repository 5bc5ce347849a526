"""Hostile and broken uploads over HTTP: each gets the contract's error or is served safely."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.images import factories, realworld

pytestmark = pytest.mark.anyio

UPLOAD = "/api/v1/images/upload"
LIMIT = 40_000


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"max_image_pixels": 1_000_000}


async def _post(client: httpx.AsyncClient, data: bytes, name: str = "x.png") -> httpx.Response:
    return await client.post(UPLOAD, files={"file": (name, data, "image/png")})


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(factories.png_bomb(), id="png-100000x100000"),
        pytest.param(factories.jpeg_declaring(65_000, 65_000), id="jpeg-65000x65000"),
        pytest.param(factories.gif_bomb(), id="gif-65535-screen"),
        pytest.param(factories.webp_declaring(16_000, 16_000), id="webp-16000x16000"),
        pytest.param(realworld.apng_bomb((1_000, 1_000), 5), id="apng-5-full-frames"),
    ],
)
async def test_decompression_bombs_are_refused_from_the_header(
    client: httpx.AsyncClient, data: bytes
) -> None:
    response = await _post(client, data)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>", "a.png", id="svg"
        ),
        pytest.param(b"<!doctype html><script>alert(1)</script>", "a.jpg", id="html"),
        pytest.param(b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "a.gif", id="pdf"),
        pytest.param(factories.bmp(), "a.png", id="bmp"),
        pytest.param(factories.tiff(), "a.png", id="tiff"),
        pytest.param(factories.ico(), "a.png", id="ico"),
        pytest.param(factories.jpeg((200, 150))[:600], "a.jpg", id="truncated-jpeg"),
        pytest.param(factories.png((200, 150))[:300], "a.png", id="truncated-png"),
        pytest.param(
            factories.random_after_magic(factories.MAGICS["png"]), "a.png", id="png-magic-noise"
        ),
        pytest.param(
            factories.random_after_magic(factories.MAGICS["jpeg"]), "a.jpg", id="jpeg-magic-noise"
        ),
        pytest.param(
            factories.random_after_magic(factories.MAGICS["gif"]), "a.gif", id="gif-magic-noise"
        ),
        pytest.param(
            factories.random_after_magic(factories.MAGICS["webp"]), "a.webp", id="webp-magic-noise"
        ),
        pytest.param(b"\x00" * 100, "zeros.png", id="zeros"),
    ],
)
async def test_non_images_and_broken_images_are_415(
    client: httpx.AsyncClient, data: bytes, name: str
) -> None:
    response = await _post(client, data, name)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "INVALID_FILE_FORMAT"


async def test_gif_javascript_polyglot_is_served_only_as_an_inert_image(
    client: httpx.AsyncClient,
) -> None:
    response = await _post(client, factories.gif_js_polyglot(), "x.js")
    assert response.status_code in (201, 415)
    if response.status_code == 201:
        body = response.json()
        assert body["content_type"] == "image/gif"
        served = await client.get(body["url"])
        assert served.headers["content-type"] == "image/gif"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]


async def test_html_appended_to_a_png_is_not_served(client: httpx.AsyncClient) -> None:
    data = factories.png((20, 20)) + b"<html><script>alert(document.cookie)</script></html>"
    body = (await _post(client, data)).json()
    served = await client.get(body["url"])
    assert b"<script>" not in served.content
    assert served.headers["content-type"] == "image/png"


async def test_image_of_exactly_max_pixels_is_accepted_and_one_more_refused(
    client: httpx.AsyncClient,
) -> None:
    assert (await _post(client, factories.png((1000, 1000)))).status_code == 201
    refused = await _post(client, factories.png((1001, 1000)))
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize(
    "make",
    [factories.jpeg_with_metadata, factories.png_with_metadata, factories.webp_with_metadata],
    ids=["jpeg", "png", "webp"],
)
async def test_location_metadata_is_stripped_pixels_and_orientation_kept(
    client: httpx.AsyncClient, make: object
) -> None:
    original = make(orientation=6)  # type: ignore[operator]
    body = (await _post(client, original)).json()
    served = (await client.get(body["url"])).content
    assert served != original
    assert body["file_size"] == len(served)
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(served)) as after:
        assert after.getexif().get_ifd(0x8825) == {}  # no GPS
        assert after.getexif().get(0x0112) == 6
        assert after.info.get("icc_profile") == before.info.get("icc_profile")
        assert "xmp" not in after.info
        assert after.tobytes() == before.tobytes()
    # orientation 6 is a quarter turn: width and height are reported as displayed
    assert (body["width"], body["height"]) == (before.height, before.width)


async def test_a_file_with_nothing_to_strip_is_stored_byte_identical(
    client: httpx.AsyncClient,
) -> None:
    original = factories.jpeg((64, 48))
    body = (await _post(client, original)).json()
    assert (await client.get(body["url"])).content == original


class TestUploadLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"max_upload_bytes": LIMIT}

    async def test_exactly_the_limit_is_accepted_one_more_byte_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        base = factories.png((16, 16))
        overhead = len(factories.png_chunk(b"zzPd", b""))
        exact = (
            base[:-12]
            + factories.png_chunk(b"zzPd", b"\0" * (LIMIT - len(base) - overhead))
            + base[-12:]
        )
        assert len(exact) == LIMIT
        accepted = await _post(client, exact)
        assert accepted.status_code == 201, accepted.text
        over = (
            base[:-12]
            + factories.png_chunk(b"zzPd", b"\0" * (LIMIT - len(base) - overhead + 1))
            + base[-12:]
        )
        refused = await _post(client, over)
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "FILE_TOO_LARGE"


class TestWithoutStripping:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"strip_metadata": False}

    async def test_download_is_the_uploaded_bytes(self, client: httpx.AsyncClient) -> None:
        original = factories.jpeg_with_metadata()
        body = (await _post(client, original)).json()
        assert (await client.get(body["url"])).content == original


class TestAllowedFormats:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"allowed_formats": ("jpeg",)}

    async def test_formats_outside_the_list_are_415(self, client: httpx.AsyncClient) -> None:
        assert (await _post(client, factories.jpeg())).status_code == 201
        refused = await _post(client, factories.png())
        assert refused.status_code == 415
        assert refused.json()["error"]["code"] == "INVALID_FILE_FORMAT"
