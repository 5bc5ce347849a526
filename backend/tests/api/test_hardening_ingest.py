"""The upload ingest path against slow, malformed and oversized bodies: every one gets
the contract's 4xx or 503, never a 500 or a hang, and never keeps other clients'
uploads out."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.images.ingest import SPILL_BYTES, clear_stale_spool
from app.ops.reconcile import reconcile
from app.wiring import close_resources, open_resources
from tests.support import images
from tests.support.app import app_client, client_from

pytestmark = pytest.mark.anyio

UPLOAD = "/api/v1/images/upload"
BATCH = "/api/v1/images/batch"
BOUNDARY = "chitram-hardening-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
# Generous bounds on waits that must end on their own: hitting one is a failure (a hang).
HANG = 60


def _file_head(field: str = "file", disposition_extra: str = 'filename="a.jpg"') -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name={field}; {disposition_extra}"
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()


def _file_part(
    data: bytes, field: str = "file", disposition_extra: str = 'filename="a.jpg"'
) -> bytes:
    return _file_head(field, disposition_extra) + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


class SlowUpload:
    """An upload whose body sends its first bytes, then waits until released."""

    def __init__(self, client: httpx.AsyncClient, path: str = UPLOAD) -> None:
        self.client = client
        self.path = path
        self.release = anyio.Event()
        self.reading = anyio.Event()  # the server took the first bytes: it was admitted
        self.response: httpx.Response | None = None
        self.photo = images.noisy_jpeg(64, 48)

    async def _body(self) -> AsyncIterator[bytes]:
        field = "file" if self.path == UPLOAD else "files"
        yield _file_head(field) + self.photo[:100]
        self.reading.set()  # runs when the server asks for more than the first chunk
        await self.release.wait()
        yield self.photo[100:] + b"\r\n" + END

    async def run(self) -> None:
        self.response = await self.client.post(self.path, content=self._body(), headers=MULTIPART)
        self.reading.set()  # refused at once: nothing is held


# ---- slow bodies -------------------------------------------------------------------------


class TestSlowBodies:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        # Each body without a declared length used to reserve the largest it might be
        # (100 000 + 64 KiB): one of them took the whole 250 000-byte budget.
        return {
            "max_upload_bytes": 100_000,
            "max_ingest_bytes": 250_000,
            "max_uploads_per_client": 2,
        }

    async def test_slow_bodies_hold_only_what_they_sent(self, app: FastAPI) -> None:
        slow = [SlowUpload(client_from(app, f"10.0.0.{n}")) for n in range(1, 8)]
        photo = images.noisy_jpeg(120, 90)
        async with anyio.create_task_group() as group:
            for upload in slow:
                group.start_soon(upload.run)
            await _all_reading(slow)
            async with client_from(app, "10.0.1.1") as other:
                ok = await other.post(UPLOAD, files={"file": ("b.jpg", photo)})
                assert ok.status_code == 201, ok.text
                batch = await other.post(BATCH, files={"files": ("c.jpg", photo)})
                assert batch.status_code == 200, batch.text
                assert batch.json()["results"][0]["status"] == 201
            assert all(upload.response is None for upload in slow)  # still held open
            for upload in slow:
                upload.release.set()
        for upload in slow:
            assert upload.response is not None
            assert upload.response.status_code == 201, upload.response.text
            await upload.client.aclose()

    async def test_one_address_holds_at_most_its_share_of_slots(self, app: FastAPI) -> None:
        photo = images.noisy_jpeg(120, 90)
        async with client_from(app, "10.0.0.1") as greedy:
            slow = [SlowUpload(greedy), SlowUpload(greedy, BATCH)]
            async with anyio.create_task_group() as group:
                for upload in slow:
                    group.start_soon(upload.run)
                await _all_reading(slow)
                third = await greedy.post(UPLOAD, files={"file": ("b.jpg", photo)})
                assert third.status_code == 429, third.text
                assert third.json()["error"]["code"] == "RATE_LIMITED"
                assert third.json()["error"]["details"] == {"max_uploads_per_client": 2}
                assert third.headers["retry-after"] == "1"
                assert third.headers["connection"] == "close"
                async with client_from(app, "10.0.0.2") as other:
                    ok = await other.post(UPLOAD, files={"file": ("c.jpg", photo)})
                    assert ok.status_code == 201, ok.text
                for upload in slow:
                    upload.release.set()
            assert [u.response.status_code for u in slow if u.response] == [201, 200]
            # The address's slots are given back once its uploads end.
            again = await greedy.post(UPLOAD, files={"file": ("d.jpg", photo)})
            assert again.status_code == 201, again.text


async def _all_reading(uploads: list[SlowUpload]) -> None:
    """Until the server reads every slow body: each holds its slot (bounded wait)."""
    with anyio.fail_after(HANG):
        for upload in uploads:
            await upload.reading.wait()


class TestMinimumRate:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"upload_grace_seconds": 0.2, "upload_min_bytes_per_second": 1000}

    @pytest.mark.parametrize("path", [UPLOAD, BATCH])
    async def test_a_body_under_the_minimum_rate_gets_408(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        stalled = anyio.Event()  # never set: the body stalls after its first bytes
        field = "file" if path == UPLOAD else "files"

        async def trickle() -> AsyncIterator[bytes]:
            yield _file_head(field) + b"\xff\xd8"
            await stalled.wait()
            yield END  # pragma: no cover - never reached

        with anyio.fail_after(HANG):
            response = await client.post(path, content=trickle(), headers=MULTIPART)
        assert response.status_code == 408, response.text
        error = response.json()["error"]
        assert error["code"] == "REQUEST_TIMEOUT"
        assert error["details"]["min_bytes_per_second"] == 1000
        assert response.headers["connection"] == "close"
        # Its slot and bytes were given back.
        photo = images.noisy_jpeg(120, 90)
        ok = await client.post(UPLOAD, files={"file": ("b.jpg", photo)})
        assert ok.status_code == 201, ok.text


# ---- input that used to give 500 ------------------------------------------------------


@pytest.mark.parametrize(
    "disposition",
    [
        pytest.param("filename*=idna''%41.jpg", id="idna"),
        pytest.param("filename*=undefined''%41.jpg", id="undefined"),
        pytest.param("filename*=utf-8\x00''%41.jpg", id="nul-in-charset"),
        pytest.param("filename*=\x00''%41.jpg", id="nul-charset"),
    ],
)
async def test_a_bad_filename_star_is_400(client: httpx.AsyncClient, disposition: str) -> None:
    photo = images.noisy_jpeg(120, 90)
    body = _file_part(photo, "file", disposition) + END
    response = await client.post(UPLOAD, content=body, headers=MULTIPART)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    # In a batch only that file is refused; the others are stored.
    batch_body = (
        _file_part(photo, "files", 'filename="ok.jpg"')
        + _file_part(photo, "files", disposition)
        + END
    )
    batch = await client.post(BATCH, content=batch_body, headers=MULTIPART)
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [201, 400]
    assert results[1]["error"]["code"] == "INVALID_REQUEST"


async def test_known_charsets_in_filename_star_still_name_the_file(
    client: httpx.AsyncClient,
) -> None:
    photo = images.noisy_jpeg(120, 90)
    for disposition, expected in [
        ("filename*=UTF-8''caf%C3%A9.jpg", "café.jpg"),
        ("filename*=iso-8859-1''caf%E9.jpg", "café.jpg"),
        ("filename*=utf-8''a%00b.jpg", "ab.jpg"),
    ]:
        body = _file_part(photo, "file", disposition) + END
        response = await client.post(UPLOAD, content=body, headers=MULTIPART)
        assert response.status_code == 201, response.text
        assert response.json()["filename"] == expected


@pytest.mark.parametrize("path", [UPLOAD, BATCH])
async def test_a_boundary_over_256_characters_is_422(client: httpx.AsyncClient, path: str) -> None:
    boundary = "b" * 300
    field = "file" if path == UPLOAD else "files"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name={field}; filename=a.jpg\r\n\r\n"
        f"x\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("path", [UPLOAD, BATCH])
async def test_an_unwritable_spool_is_503(
    client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    spool = settings.tmp_dir
    moved = spool.with_name("tmp-moved")
    spool.rename(moved)
    spool.write_bytes(b"")  # a file where the folder was: nothing can be spooled (even as root)
    photo = images.noisy_jpeg(120, 90)
    field = "file" if path == UPLOAD else "files"
    try:
        response = await client.post(path, files={field: ("a.jpg", photo)})
    finally:
        spool.unlink()
        moved.rename(spool)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "retry-after" in response.headers
    again = await client.post(path, files={field: ("a.jpg", photo)})
    assert again.status_code in (200, 201), again.text


# ---- form-field floods ------------------------------------------------------------------


@pytest.mark.parametrize("path", [UPLOAD, BATCH])
async def test_a_flood_of_form_fields_is_refused_early(
    client: httpx.AsyncClient, path: str
) -> None:
    field = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n".encode()
    chunk = field * 1000
    chunks = 100  # 100 000 empty fields, about 6 MB
    sent = 0

    async def flood() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(chunks):
            sent += 1
            yield chunk
        file_field = "file" if path == UPLOAD else "files"
        yield _file_part(images.noisy_jpeg(120, 90), file_field) + END

    response = await client.post(path, content=flood(), headers=MULTIPART)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"] == {"max_form_fields": 16}
    assert sent < chunks  # refused long before the body ended


async def test_a_few_form_fields_beside_the_file_are_fine(client: httpx.AsyncClient) -> None:
    fields = b"".join(
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=f{n}\r\n\r\nv\r\n".encode()
        for n in range(16)
    )
    body = fields + _file_part(images.noisy_jpeg(120, 90)) + END
    response = await client.post(UPLOAD, content=body, headers=MULTIPART)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("X-Pad: " + "a" * 20_000 + "\r\n", id="huge-header"),
        pytest.param("".join(f"X-H{n}: v\r\n" for n in range(100)), id="many-headers"),
    ],
)
async def test_oversized_part_headers_are_400(client: httpx.AsyncClient, headers: str) -> None:
    body = (
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n"
            f"{headers}\r\n"
        ).encode()
        + images.noisy_jpeg(120, 90)
        + b"\r\n"
        + END
    )
    response = await client.post(UPLOAD, content=body, headers=MULTIPART)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


# ---- spool files left by killed uploads ------------------------------------------------


def _spool_files(settings: Settings) -> tuple[Path, Path, Path]:
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    old = settings.tmp_dir / "upload-killed"
    fresh = settings.tmp_dir / "upload-in-progress"
    other = settings.tmp_dir / "restore-old"  # not an upload's: left alone
    hour_and_more = time.time() - 3700
    for path in (old, fresh, other):
        path.write_bytes(b"partial upload")
    for path in (old, other):
        os.utime(path, (hour_and_more, hour_and_more))
    return old, fresh, other


async def test_reconcile_removes_spool_files_older_than_an_hour(settings: Settings) -> None:
    resources = await open_resources(settings)
    try:
        _wait_for_startup_cleanup()
        old, fresh, other = _spool_files(settings)
        dry = await reconcile(resources, dry_run=True)
        assert dry.stale_spool_files == ["upload-killed"]
        assert old.exists()  # a dry run changes nothing
        report = await reconcile(resources, dry_run=False)
        assert report.stale_spool_files == ["upload-killed"]
    finally:
        await close_resources(resources)
    assert not old.exists()
    assert fresh.exists()
    assert other.exists()


async def test_start_up_removes_spool_files_older_than_an_hour(settings: Settings) -> None:
    old, fresh, other = _spool_files(settings)
    async with app_client(settings) as client:
        _wait_for_startup_cleanup()
        assert (await client.get("/health")).status_code == 200
    assert not old.exists()
    assert fresh.exists()
    assert other.exists()


async def test_a_slow_batch_keeps_its_earlier_files_from_the_stale_spool_sweep(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A batch's earlier files sit spooled while later parts arrive, which at the minimum
    rate (or without one) can take longer than the sweep's hour: each new part touches
    them, so a sweep meanwhile (reconcile, another process starting) leaves them be."""
    photo = images.noisy_jpeg(1400, 1000)  # over the 1 MiB spill: on disk as it arrives
    assert len(photo) > SPILL_BYTES

    swept: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield _file_part(photo, "files", 'filename="first.jpg"')
        # An hour and more goes by before the next part (the sweep's cut-off, faked).
        hour_and_more = time.time() - 3700
        for spooled in settings.tmp_dir.glob("upload-*"):
            os.utime(spooled, (hour_and_more, hour_and_more))
        yield _file_head("files", 'filename="second.jpg"')
        swept.extend(clear_stale_spool(settings.tmp_dir))
        yield images.noisy_jpeg(120, 90) + b"\r\n" + END

    response = await client.post(BATCH, content=body(), headers=MULTIPART)
    assert swept == []
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [201, 201]


def _wait_for_startup_cleanup() -> None:
    for thread in threading.enumerate():
        if thread.name == "spool-cleanup":
            thread.join(HANG)
            assert not thread.is_alive()
