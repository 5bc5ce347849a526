"""Uploading images: the 201 body, what is stored, and what is refused."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from tests.support import flows, images

pytestmark = pytest.mark.anyio

UPLOAD = "/api/v1/images/upload"
# Uploads typed as nothing in particular: the server must sniff the format from the bytes.
UNTYPED = "application/octet-stream"


async def test_upload_returns_metadata_links_and_delete_token(client: httpx.AsyncClient) -> None:
    data = images.jpeg(64, 48)
    response = await flows.upload(client, data, filename="photo.jpg", content_type=UNTYPED)
    assert response.status_code == 201
    body = response.json()
    assert body["filename"] == "photo.jpg"
    assert body["content_type"] == "image/jpeg"
    assert (body["width"], body["height"], body["frames"]) == (64, 48, 1)
    assert body["file_size"] == len(data)
    assert body["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert body["url"] == f"http://testserver/api/v1/images/{body['id']}/file"
    assert body["thumbnail_status"] == "pending"
    assert body["thumbnail_ready"] is False
    assert body["thumbnail_url"] is None
    assert body["thumbnails"] == {"small": None, "medium": None, "large": None}
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")
    assert len(body["delete_token"]) >= 32
    assert body["delete_url"].startswith(f"http://testserver/api/v1/images/{body['id']}?")


async def test_uploaded_bytes_come_back_identical(client: httpx.AsyncClient) -> None:
    data = images.png(40, 30)
    body = (await flows.upload(client, data, filename="pic.png", content_type=UNTYPED)).json()
    download = await client.get(body["url"])
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "image/png"


async def test_content_type_comes_from_bytes_not_from_client(client: httpx.AsyncClient) -> None:
    response = await client.post(UPLOAD, files={"file": ("lies.gif", images.png(), "image/gif")})
    assert response.status_code == 201
    assert response.json()["content_type"] == "image/png"


async def test_identical_uploads_share_one_object(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    data = images.jpeg(20, 20)
    first = (await flows.upload(client, data, filename="photo.jpg", content_type=UNTYPED)).json()
    second = (await flows.upload(client, data, filename="photo.jpg", content_type=UNTYPED)).json()
    assert first["id"] != second["id"]
    assert first["checksum"] == second["checksum"]
    # Originals only: the thumbnail job may or may not have written its files yet.
    originals = settings.data_dir / "objects" / "originals"
    assert len([p for p in originals.rglob("*") if p.is_file()]) == 1


async def test_missing_file_field_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post(UPLOAD, files={"other": ("a.jpg", images.jpeg(), "image/jpeg")})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["loc"] == ["body", "file"]


async def test_not_multipart_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post(UPLOAD, json={"file": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_empty_file_part_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await flows.upload(client, b"", filename="photo.jpg", content_type=UNTYPED)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


async def test_two_files_to_single_upload_is_invalid_request(client: httpx.AsyncClient) -> None:
    files = [("file", ("a.jpg", images.jpeg(), "image/jpeg"))] * 2
    response = await client.post(UPLOAD, files=files)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


async def test_malformed_multipart_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        UPLOAD,
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code in (400, 415)
    assert response.json()["error"]["code"] in ("INVALID_REQUEST", "INVALID_FILE_FORMAT")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Users\\me\\cat.png", "cat.png"),
        ('quo"te.png', 'quo"te.png'),
        ("line\r\nbreak.png", "linebreak.png"),
        ("nul\x00byte.png", "nul%00byte.png"),  # httpx escapes NUL; a raw NUL is tested below
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("日本語の写真.png", "日本語の写真.png"),
        ("..", "image.png"),
        ("a" * 300 + ".png", "a" * 251 + ".png"),
    ],
)
async def test_filenames_are_made_safe(client: httpx.AsyncClient, raw: str, expected: str) -> None:
    response = await client.post(UPLOAD, files={"file": (raw, images.png(), "image/png")})
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == expected
    download = await client.get(response.json()["url"])
    disposition = download.headers["content-disposition"]
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert disposition.startswith('inline; filename="')
    assert "filename*=UTF-8''" in disposition


async def test_file_over_limit_is_413_before_reading_everything(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    chunks_read = 0
    limit = settings.max_upload_bytes

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
        for _ in range(limit // 65536 * 4):
            chunks_read += 1
            yield b"\xff" * 65536

    response = await client.post(
        UPLOAD, content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "FILE_TOO_LARGE"
    assert chunks_read < limit // 65536 + 3  # stopped at the limit, not at the end


async def test_declared_oversized_body_is_refused_up_front(client: httpx.AsyncClient) -> None:
    response = await client.post(
        UPLOAD,
        content=b"x",
        headers={
            "content-type": "multipart/form-data; boundary=b",
            "content-length": str(10**10),
        },
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "FILE_TOO_LARGE"


@pytest.mark.parametrize(
    ("raw_header", "expected"),
    [
        (b'filename="nul\x00byte.png"', "nulbyte.png"),
        (b'filename="tab\there.png"', "tab here.png"),
        (b'filename="caf\xc3\xa9.png"', "café.png"),
        (b"filename*=UTF-8''%E2%82%AC%20rates.png", "€ rates.png"),
        (b'filename="\xff\xfe.png"', "\ufffd\ufffd.png"),
    ],
)
async def test_raw_hostile_filename_headers(
    client: httpx.AsyncClient, raw_header: bytes, expected: str
) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; '
        + raw_header
        + b"\r\nContent-Type: image/png\r\n\r\n"
        + images.png()
        + b"\r\n--b--\r\n"
    )
    response = await client.post(
        UPLOAD, content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == expected


async def test_header_injection_via_filename_is_refused_or_neutralised(
    client: httpx.AsyncClient,
) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png\r\n'
        b'X-Evil: 1"\r\n\r\n' + images.png() + b"\r\n--b--\r\n"
    )
    response = await client.post(
        UPLOAD, content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code in (201, 400)
    if response.status_code == 201:
        download = await client.get(response.json()["url"])
        assert "x-evil" not in download.headers
