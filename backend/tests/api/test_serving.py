"""Serving originals: headers, validators, ranges, HEAD, downloads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.support import images
from tests.support.serving import assert_serving_headers

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # A small threshold so that both the in-memory and the streamed paths are exercised.
    return {"small_file_bytes": 4096}


@pytest.fixture(params=["small", "large"])
async def uploaded(request: pytest.FixtureRequest, client: httpx.AsyncClient) -> dict[str, object]:
    data = images.png(8, 8) if request.param == "small" else images.noisy_jpeg(200, 150)
    assert (len(data) <= 4096) == (request.param == "small")
    response = await client.post(
        "/api/v1/images/upload", files={"file": ("Ünïcode café.png", data, "image/png")}
    )
    assert response.status_code == 201
    return {**response.json(), "data": data}


async def test_file_has_every_serving_header(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    response = await client.get(uploaded["url"])
    assert response.status_code == 200
    assert response.content == uploaded["data"]
    h = response.headers
    assert h["etag"] == f'"{uploaded["checksum"].removeprefix("sha256:")}"'
    assert_serving_headers(
        response,
        content_disposition=(
            'inline; filename="Unicode cafe.png"; '
            "filename*=UTF-8''%C3%9Cn%C3%AFcode%20caf%C3%A9.png"
        ),
    )
    assert h["x-request-id"]


async def test_download_flag_gives_attachment(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    response = await client.get(uploaded["url"], params={"download": "1"})
    assert response.headers["content-disposition"].startswith("attachment; ")


async def test_head_has_headers_and_no_body(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    response = await client.head(uploaded["url"])
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(uploaded["data"]))
    assert response.headers["etag"]


async def test_if_none_match_gives_304(client: httpx.AsyncClient, uploaded: dict[str, Any]) -> None:
    etag = (await client.get(uploaded["url"])).headers["etag"]
    response = await client.get(uploaded["url"], headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    other = await client.get(uploaded["url"], headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-0", 0, 0), ("bytes=0-99", 0, 99), ("bytes=10-", 10, None), ("bytes=-7", -7, None)],
)
async def test_range_gives_206_with_exact_bytes(
    client: httpx.AsyncClient, uploaded: dict[str, Any], header: str, start: int, end: int | None
) -> None:
    data: bytes = uploaded["data"]
    response = await client.get(uploaded["url"], headers={"Range": header})
    assert response.status_code == 206
    expected = data[start : (end + 1 if end is not None else None)]
    assert response.content == expected
    first = start if start >= 0 else len(data) + start
    assert (
        response.headers["content-range"]
        == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    )
    assert response.headers["content-length"] == str(len(expected))


async def test_range_past_the_end_is_416(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    size = len(uploaded["data"])
    response = await client.get(uploaded["url"], headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.json()["error"]["code"] == "RANGE_NOT_SATISFIABLE"


async def test_malformed_or_multi_range_gives_whole_file(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    for header in ("bytes=5-2", "items=0-1", "bytes=0-1,4-5"):
        response = await client.get(uploaded["url"], headers={"Range": header})
        assert response.status_code == 200, header
        assert response.content == uploaded["data"]


async def test_stale_if_range_gives_whole_file(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    response = await client.get(
        uploaded["url"], headers={"Range": "bytes=0-3", "If-Range": '"stale"'}
    )
    assert response.status_code == 200


async def test_metadata_by_id(client: httpx.AsyncClient, uploaded: dict[str, Any]) -> None:
    response = await client.get(f"/api/v1/images/{uploaded['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == uploaded["id"]
    assert "delete_token" not in body
    assert "delete_token_hash" not in body
    assert response.headers["x-cache"] in ("HIT", "MISS", "BYPASS")


async def test_unknown_image_is_404_everywhere(client: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in [
        ("GET", f"/api/v1/images/{missing}"),
        ("GET", f"/api/v1/images/{missing}/file"),
        ("HEAD", f"/api/v1/images/{missing}/file"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 404
        if method == "GET":
            assert response.json()["error"]["code"] == "IMAGE_NOT_FOUND"


async def test_public_base_url_is_used_for_links(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    settings.public_base_url = "https://img.example.org"
    body = (
        await client.post(
            "/api/v1/images/upload", files={"file": ("a.png", images.png(), "image/png")}
        )
    ).json()
    assert body["url"] == f"https://img.example.org/api/v1/images/{body['id']}/file"
    assert body["delete_url"].startswith(f"https://img.example.org/api/v1/images/{body['id']}?")


async def test_metadata_cache_hits_and_delete_invalidates(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/api/v1/images/upload", files={"file": ("c.png", images.png(7, 7))})
    ).json()
    path = f"/api/v1/images/{body['id']}"
    assert (await client.get(path)).headers["x-cache"] == "MISS"
    cached = await client.get(path)
    assert cached.headers["x-cache"] == "HIT"
    assert cached.json()["id"] == body["id"]
    assert (await client.get(body["url"])).status_code == 200
    assert (await client.delete(body["delete_url"])).status_code == 204
    assert (await client.get(path)).status_code == 404
    assert (await client.get(body["url"])).status_code == 404


class TestSeveralProcesses:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"web_processes": 2}

    async def test_no_in_process_cache_when_other_processes_serve(
        self, client: httpx.AsyncClient
    ) -> None:
        body = (
            await client.post("/api/v1/images/upload", files={"file": ("c.png", images.png())})
        ).json()
        for _ in range(2):
            response = await client.get(f"/api/v1/images/{body['id']}")
            assert response.headers["x-cache"] == "BYPASS"
