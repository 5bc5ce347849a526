"""The real `chitram` process: a new user's flow, interrupted downloads, crashes, reconcile."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support import images
from tests.support.server import chitram, live_server

pytestmark = pytest.mark.anyio


def _objects(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "objects").rglob("*") if p.is_file()]


async def test_new_user_flow_on_the_embedded_defaults(tmp_path: Path) -> None:
    """`chitram migrate` + `chitram serve` with no configuration but DATA_DIR."""
    data_dir = tmp_path / "data"
    photo = images.noisy_jpeg(400, 300)
    with live_server({"DATA_DIR": str(data_dir)}, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            created = await client.post(
                "/api/v1/images/upload",
                files={"file": ("photo.jpg", photo, "image/jpeg")},
                headers={"X-Request-ID": "e2e-upload-1"},
            )
            assert created.status_code == 201, created.text
            body = created.json()
            assert body["url"].startswith(server.url)
            download = await client.get(body["url"])
            assert download.content == photo
            head = await client.head(body["url"])
            assert head.headers["content-length"] == str(len(photo))
            assert (await client.delete(body["delete_url"])).status_code == 204
            assert (await client.get(body["url"])).status_code == 404
    assert (data_dir / "chitram.db").exists()
    log_lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "e2e-upload-1" for line in log_lines)


async def test_interrupted_download_leaves_the_server_healthy(tmp_path: Path) -> None:
    photo = images.noisy_jpeg(1200, 900)  # about 1 MB: streamed, not read at once
    env = {"DATA_DIR": str(tmp_path / "data"), "MAX_UPLOAD_BYTES": str(8 * 1024 * 1024)}
    with live_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            body = (
                await client.post("/api/v1/images/upload", files={"file": ("a.jpg", photo)})
            ).json()
            for _ in range(5):
                async with client.stream("GET", body["url"]) as response:
                    async for _chunk in response.aiter_raw(1024):
                        break  # hang up after the first kilobyte
            ranged = await client.get(body["url"], headers={"Range": "bytes=1000-1999"})
            assert ranged.status_code == 206
            assert ranged.content == photo[1000:2000]
            assert (await client.get(body["url"])).content == photo
        assert "unhandled error" not in server.log()


async def test_upload_over_limit_is_refused_while_streaming(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "MAX_UPLOAD_BYTES": "100000"}
    with live_server(env, tmp_path) as server:
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
            for _ in range(2000):  # 128 MB if the server kept reading
                sent += 65536
                yield b"\0" * 65536

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            try:
                response = await client.post(
                    "/api/v1/images/upload",
                    content=body(),
                    headers={"content-type": "multipart/form-data; boundary=b"},
                )
            except httpx.TransportError:
                response = None  # the server may hang up on a body it refused
        if response is not None:
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "FILE_TOO_LARGE"
        assert sent < 64 * 1024 * 1024
        assert not list((tmp_path / "data" / "tmp").iterdir())


async def test_crash_between_object_write_and_row_insert_is_repaired(
    tmp_path: Path, postgres_url: str
) -> None:
    """SIGKILL the server while its upload waits to insert the row; reconcile cleans up."""
    data_dir = tmp_path / "data"
    env = {"DATA_DIR": str(data_dir), "DATABASE_URL": postgres_url}
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    photo = images.noisy_jpeg(320, 240, seed=42)
    with live_server(env, tmp_path) as server:
        blocker = await asyncpg.connect(dsn)
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE images IN EXCLUSIVE MODE")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            upload = asyncio.create_task(
                client.post("/api/v1/images/upload", files={"file": ("a.jpg", photo)})
            )
            for _ in range(400):  # the object gets written; the row insert then waits
                if _objects(data_dir):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the upload never wrote its object")
            server.kill()
            with pytest.raises(httpx.TransportError):
                await upload
        await transaction.rollback()
        await blocker.close()
    assert len(_objects(data_dir)) == 1

    reconcile_env = {**env, "RECONCILE_GRACE_SECONDS": "0"}
    report = json.loads(chitram("reconcile", "--dry-run", env=reconcile_env).stdout)
    assert len(report["objects_without_row"]) == 1
    assert len(_objects(data_dir)) == 1  # a dry run changes nothing
    repaired = json.loads(chitram("reconcile", env=reconcile_env).stdout)
    assert len(repaired["objects_without_row"]) == 1
    assert not _objects(data_dir)
    assert json.loads(chitram("reconcile", env=reconcile_env).stdout)["clean"] is True

    with live_server(env, tmp_path, migrate=False) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            retry = await client.post("/api/v1/images/upload", files={"file": ("a.jpg", photo)})
            assert retry.status_code == 201
            assert (await client.get(retry.json()["url"])).content == photo


async def test_reconcile_removes_rows_whose_object_vanished(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"DATA_DIR": str(data_dir)}
    with live_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            kept = (
                await client.post(
                    "/api/v1/images/upload", files={"file": ("k.png", images.png(5, 5))}
                )
            ).json()
            lost = (
                await client.post(
                    "/api/v1/images/upload", files={"file": ("l.png", images.png(6, 6))}
                )
            ).json()
    lost_sha = lost["checksum"].removeprefix("sha256:")
    [lost_path] = [p for p in _objects(data_dir) if p.name == lost_sha]
    lost_path.unlink()
    report = json.loads(chitram("reconcile", env=env).stdout)
    assert report["rows_without_object"] == [lost_sha]
    assert report["images_removed"] == [lost["id"]]
    with live_server(env, tmp_path, migrate=False) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get(f"/api/v1/images/{lost['id']}")).status_code == 404
            assert (await client.get(f"/api/v1/images/{kept['id']}/file")).status_code == 200


async def test_delete_racing_a_download(tmp_path: Path) -> None:
    """A download under way when the 204 lands finishes whole; nothing is served after."""
    photo = images.noisy_jpeg(1600, 1200, seed=7)  # about 2 MB, streamed in chunks
    env = {"DATA_DIR": str(tmp_path / "data"), "MAX_UPLOAD_BYTES": str(8 * 1024 * 1024)}
    with live_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            body = (
                await client.post("/api/v1/images/upload", files={"file": ("a.jpg", photo)})
            ).json()
            async with client.stream("GET", body["url"]) as download:
                raw = download.aiter_raw(4096)
                chunks = [await anext(raw)]
                async with httpx.AsyncClient() as other:
                    assert (await other.delete(body["delete_url"])).status_code == 204
                    assert (await other.get(body["url"])).status_code == 404
                    assert (await other.head(body["url"])).status_code == 404
                chunks += [chunk async for chunk in raw]
            assert b"".join(chunks) == photo
