"""Deleting anonymous uploads with their delete token."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings
from tests.support import flows, images

pytestmark = pytest.mark.anyio


async def test_delete_with_header_token_removes_everything(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = await flows.upload_ok(client)
    await flows.wait_for_thumbnails(client, body["id"])  # so that there are thumbnails to delete
    image_path = f"/api/v1/images/{body['id']}"
    response = await client.delete(image_path, headers={"X-Delete-Token": body["delete_token"]})
    assert response.status_code == 204
    assert (await client.get(image_path)).status_code == 404
    assert (await client.get(body["url"])).status_code == 404
    assert (await client.head(body["url"])).status_code == 404
    assert not [p for p in (settings.data_dir / "objects").rglob("*") if p.is_file()]


async def test_delete_url_alone_deletes(client: httpx.AsyncClient) -> None:
    body = await flows.upload_ok(client)
    assert (await client.delete(body["delete_url"])).status_code == 204
    assert (await client.delete(body["delete_url"])).status_code == 404


async def test_delete_without_token_is_refused(client: httpx.AsyncClient) -> None:
    body = await flows.upload_ok(client)
    response = await client.delete(f"/api/v1/images/{body['id']}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "DELETE_TOKEN_REQUIRED"
    assert (await client.get(body["url"])).status_code == 200


async def test_delete_with_wrong_token_is_refused(client: httpx.AsyncClient) -> None:
    body = await flows.upload_ok(client)
    other = await flows.upload_ok(client, images.png(9, 9))
    for token in ("wrong", other["delete_token"], "é" * 40):
        response = await client.delete(
            f"/api/v1/images/{body['id']}", params={"delete_token": token}
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "INVALID_DELETE_TOKEN"
    assert (await client.get(body["url"])).status_code == 200


async def test_shared_object_survives_until_last_image_is_deleted(
    client: httpx.AsyncClient,
) -> None:
    data = images.png(12, 12)
    first, second = await flows.upload_ok(client, data), await flows.upload_ok(client, data)
    assert (await client.delete(first["delete_url"])).status_code == 204
    survivor = await client.get(second["url"])
    assert survivor.status_code == 200
    assert survivor.content == data
    assert (await client.delete(second["delete_url"])).status_code == 204
    assert (await client.get(second["url"])).status_code == 404


async def test_delete_racing_a_streamed_download(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    settings.small_file_bytes = 1024
    data = images.noisy_jpeg(300, 200)
    body = await flows.upload_ok(client, data)
    async with client.stream("GET", body["url"]) as download:
        assert download.status_code == 200
        assert (await client.delete(body["delete_url"])).status_code == 204
        received = b"".join([chunk async for chunk in download.aiter_bytes()])
    # The download that had started finishes whole (or not at all), never with wrong bytes...
    assert received in (data, b"") or data.startswith(received)
    # ...and nothing is served after the 204.
    assert (await client.get(body["url"])).status_code == 404
