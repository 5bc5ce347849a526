"""Batch uploads and Idempotency-Key retries."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support import flows, images

pytestmark = pytest.mark.anyio
CALLER = "203.0.113.5"  # behind the loopback proxy the tests trust


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"max_batch_files": 3, "max_upload_bytes": 20_000}


async def test_batch_reports_each_file_on_its_own(client: httpx.AsyncClient) -> None:
    files = [
        ("files", ("good.png", images.png(), "image/png")),
        ("files", ("../fa\u202eke.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png")),
        ("files", ("big.jpg", images.noisy_jpeg(300, 300), "image/jpeg")),
    ]
    response = await client.post("/api/v1/images/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 415, 413]
    assert results[0]["image"]["delete_token"]
    assert (await client.get(results[0]["image"]["url"])).status_code == 200
    assert results[1]["error"]["code"] == "INVALID_FILE_FORMAT"
    assert results[2]["error"]["code"] == "FILE_TOO_LARGE"
    assert results[1]["filename"] == "fake.png"


async def test_batch_with_too_many_files_is_invalid_request(client: httpx.AsyncClient) -> None:
    files = [("files", (f"{i}.png", images.png(), "image/png")) for i in range(4)]
    response = await client.post("/api/v1/images/batch", files=files)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


async def test_batch_without_files_is_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/images/batch", files={"x": ("a", b"1", "text/plain")})
    assert response.status_code == 422


async def test_retry_with_same_key_returns_same_body(client: httpx.AsyncClient) -> None:
    first = await flows.upload(client, key="retry-1", ip=CALLER)
    second = await flows.upload(client, key="retry-1", ip=CALLER)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    # the replayed delete token works
    assert (await client.delete(second.json()["delete_url"])).status_code == 204


async def test_same_key_from_another_caller_is_a_new_upload(client: httpx.AsyncClient) -> None:
    first = await flows.upload(client, key="shared", ip="203.0.113.5")
    second = await flows.upload(client, key="shared", ip="203.0.113.6")
    assert first.json()["id"] != second.json()["id"]


async def test_concurrent_retries_create_one_image(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *[flows.upload(client, key="race", ip=CALLER) for _ in range(4)]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1


async def test_bad_idempotency_key_is_validation_error(client: httpx.AsyncClient) -> None:
    response = await flows.upload(client, key="x" * 300, ip=CALLER)
    assert response.status_code == 422
