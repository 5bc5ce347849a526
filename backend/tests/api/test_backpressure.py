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


async def test_bytes_in_flight_are_counted_as_they_arrive(client: httpx.AsyncClient) -> None:
    photo = images.noisy_jpeg(120, 90)

    def batch_part(data: bytes, name: str) -> bytes:
        return (
            (
                f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
                f'name="files"; filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )

    async def body(parts: list[bytes]) -> AsyncIterator[bytes]:
        for part in parts:
            yield part
        yield f"--{BOUNDARY}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    # No declared length: the batch may carry up to 20 files, more than MAX_INGEST_BYTES,
    # but only what arrives counts, so a small one is accepted.
    small = await client.post(
        "/api/v1/images/batch", content=body([batch_part(photo, "a.jpg")]), headers=headers
    )
    assert small.status_code == 200, small.text
    assert small.json()["results"][0]["status"] == 201
    # Bytes that would take the process over MAX_INGEST_BYTES are refused as they come.
    filler = bytes(90_000)
    big = [batch_part(filler, f"{n}.jpg") for n in range(3)]
    response = await client.post("/api/v1/images/batch", content=body(big), headers=headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"] == "1"
    assert response.headers["connection"] == "close"
    # The refused body's bytes are released: the next upload is served.
    again = await client.post("/api/v1/images/upload", files={"file": ("c.jpg", photo)})
    assert again.status_code == 201
