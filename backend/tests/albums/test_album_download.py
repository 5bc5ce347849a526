"""`GET /albums/{id}/download`: a zip of the originals as served, streamed one entry at a
time, with distinct names and only the images the caller may see."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest

from app.albums.service import distinct_names
from app.albums.zipstream import ZipEntry, zip_stream
from app.storage.base import ObjectNotFound
from tests.albums.support import ALBUMS, code, create, put_images
from tests.support import flows, images
from tests.support.accounts import Account

pytestmark = pytest.mark.anyio


async def _file(client: httpx.AsyncClient, image_id: str, account: Account) -> bytes:
    response = await client.get(f"/api/v1/images/{image_id}/file", headers=account.headers)
    assert response.status_code == 200
    return response.content


async def test_the_zip_holds_the_originals_under_distinct_names(
    client: httpx.AsyncClient,
) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    album = await create(client, owner, title='Trip 2026/ "summer"')
    uploads = [
        ("a.png", images.png(10, 10), {}),
        ("a.png", images.png(11, 10), {}),
        ("secret.png", images.png(12, 10), {"visibility": "private"}),
        ("A.png", images.png(13, 10), {}),
        ("big.jpg", images.noisy_jpeg(700, 500, seed=3), {}),
        ("a (2).png", images.png(14, 10), {}),
    ]
    ids = [
        (await flows.upload_ok(client, data, filename=name, account=owner, fields=fields))["id"]
        for name, data, fields in uploads
    ]
    assert (await put_images(client, owner, album["id"], ids)).status_code == 200

    response = await client.get(f"{ALBUMS}/{album['id']}/download", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        'attachment; filename="Trip 2026_ _summer_.zip"; '
        "filename*=UTF-8''Trip%202026_%20_summer_.zip"
    )
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    names = ["a.png", "a (2).png", "secret.png", "A (3).png", "big.jpg", "a (2) (2).png"]
    assert archive.namelist() == names
    for name, image_id in zip(names, ids, strict=True):
        assert archive.read(name) == await _file(client, image_id, owner), name
        assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED
    assert len(archive.read("big.jpg")) > 256 * 1024  # more than one storage chunk

    for headers in (other.headers, {}):
        theirs = await client.get(f"{ALBUMS}/{album['id']}/download", headers=headers)
        assert theirs.status_code == 200
        seen = zipfile.ZipFile(io.BytesIO(theirs.content))
        assert seen.namelist() == ["a.png", "a (2).png", "A (3).png", "big.jpg", "a (2) (2).png"]
        assert seen.read("big.jpg") == archive.read("big.jpg")


async def test_an_empty_album_is_an_empty_zip(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner, title="   ..  ", visibility="private")
    response = await client.get(f"{ALBUMS}/{album['id']}/download", headers=owner.headers)
    assert response.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist() == []
    assert response.headers["content-disposition"].startswith('attachment; filename="album.zip"')
    hidden = await client.get(f"{ALBUMS}/{album['id']}/download")
    assert hidden.status_code == 404
    assert code(hidden) == "ALBUM_NOT_FOUND"


def test_names_are_made_distinct_case_insensitively() -> None:
    assert distinct_names(["a.jpg", "a.jpg", "A.JPG", "b", "b", ".x", "a (2).jpg"]) == [
        "a.jpg",
        "a (2).jpg",
        "A (3).JPG",
        "b",
        "b (2)",
        ".x",
        "a (2) (2).jpg",
    ]


async def _chunks(count: int, size: int, fill: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield bytes([fill]) * size


async def _missing() -> AsyncIterator[bytes]:
    raise ObjectNotFound("gone")
    yield b""  # pragma: no cover - makes this an async generator


async def test_the_zip_is_written_a_chunk_at_a_time() -> None:
    chunk = 64 * 1024
    when = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    entries = [
        ZipEntry("one.bin", 40 * chunk, when, lambda: _chunks(40, chunk, 1)),
        ZipEntry("gone.bin", 10, when, _missing),
        ZipEntry("two.bin", 3 * chunk, when, lambda: _chunks(3, chunk, 2)),
    ]
    pieces = [piece async for piece in zip_stream(entries)]
    assert len(pieces) >= 43
    assert max(len(piece) for piece in pieces) <= chunk + 1024  # never the whole file
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.namelist() == ["one.bin", "two.bin"]  # a missing object is left out
    assert archive.read("one.bin") == bytes([1]) * 40 * chunk
    assert archive.read("two.bin") == bytes([2]) * 3 * chunk
    assert archive.getinfo("one.bin").date_time == (2026, 11, 22, 9, 0, 0)


async def test_a_client_that_goes_away_leaves_no_object_open() -> None:
    opened: list[str] = []
    closed: list[str] = []

    def source(name: str) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            opened.append(name)
            try:
                for _ in range(5):
                    yield b"x" * 1024
            finally:
                closed.append(name)

        return chunks()

    when = datetime(2026, 11, 22, tzinfo=UTC)
    entries = [ZipEntry(f"{n}.bin", 5 * 1024, when, partial(source, f"{n}")) for n in range(20)]
    stream = zip_stream(entries, read_ahead=2, open_ahead=3)
    first = await anext(stream)
    assert first.startswith(b"PK\x03\x04")
    await stream.aclose()
    assert opened  # some were read ahead ...
    assert len(opened) < len(entries)  # ... but not all of them
    assert sorted(closed) == sorted(opened)  # and every one opened was closed
