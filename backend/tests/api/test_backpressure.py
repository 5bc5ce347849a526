"""Upload back-pressure: a saturated process answers 503 before reading the body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from tests.support import images

pytestmark = pytest.mark.anyio
BOUNDARY = "chitram-test-boundary"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "max_concurrent_uploads": 1,
        "max_upload_bytes": 100_000,
        "max_ingest_bytes": 250_000,
    }


def _parts(data: bytes) -> tuple[bytes, bytes]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data[:100], data[100:] + f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_a_saturated_process_refuses_uploads_until_one_finishes(
    client: httpx.AsyncClient,
) -> None:
    photo = images.noisy_jpeg(120, 90)
    first, rest = _parts(photo)
    release = anyio.Event()
    read_rest = False

    async def slow_body() -> AsyncIterator[bytes]:
        nonlocal read_rest
        yield first
        await release.wait()
        read_rest = True
        yield rest

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    async with anyio.create_task_group() as group:
        responses: list[httpx.Response] = []

        async def slow_upload() -> None:
            responses.append(
                await client.post("/api/v1/images/upload", content=slow_body(), headers=headers)
            )

        group.start_soon(slow_upload)
        await anyio.sleep(0.2)  # the slow upload holds the only slot
        busy = await client.post("/api/v1/images/upload", files={"file": ("b.jpg", photo)})
        assert busy.status_code == 503
        assert busy.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert busy.headers["retry-after"] == "1"
        assert busy.headers["connection"] == "close"
        batch = await client.post("/api/v1/images/batch", files={"files": ("b.jpg", photo)})
        assert batch.status_code == 503
        assert not read_rest
        release.set()
    assert responses[0].status_code == 201
    again = await client.post("/api/v1/images/upload", files={"file": ("c.jpg", photo)})
    assert again.status_code == 201


async def test_bytes_in_flight_are_capped_by_the_declared_length(
    client: httpx.AsyncClient, settings_overrides: dict[str, object]
) -> None:
    photo = images.noisy_jpeg(120, 90)
    # A batch of up to 20 files may bring more than MAX_INGEST_BYTES: with no declared
    # length, the gate must assume the worst and refuse it.
    chunked = _parts(photo)

    async def body() -> AsyncIterator[bytes]:
        for part in chunked:
            yield part

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = await client.post("/api/v1/images/batch", content=body(), headers=headers)
    assert response.status_code == 503
    # The same file with its length declared fits, and is accepted.
    declared = await client.post("/api/v1/images/batch", files={"files": ("a.jpg", photo)})
    assert declared.status_code == 200
    assert declared.json()["results"][0]["status"] == 201
