"""A backup of a populated instance restores into an empty one, byte for byte: through
the `chitram backup` and `chitram restore` commands, across database kinds and stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.support import flows, images
from tests.support.accounts import PASSWORD, TEST_JWT_SECRET
from tests.support.app import app_client
from tests.support.flows import wait_for_thumbnails
from tests.support.seaweed import SeaweedS3, on_seaweed
from tests.support.server import chitram

pytestmark = pytest.mark.anyio


def _env(settings: Settings) -> dict[str, str]:
    """The environment that makes `chitram` see `settings`."""
    env = {
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.resolved_database_url,
        "STORAGE_BACKEND": settings.storage_backend,
        "LOG_LEVEL": "WARNING",
    }
    if settings.storage_backend == "s3":
        env |= {
            "S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
            "S3_ACCESS_KEY": str(settings.s3_access_key),
            "S3_SECRET_KEY": settings.s3_secret_key.get_secret_value()
            if settings.s3_secret_key
            else "",
            "S3_BUCKET": settings.s3_bucket,
            "S3_REGION": settings.s3_region,
        }
    return env


async def _populate(client: httpx.AsyncClient) -> tuple[dict[str, bytes], str]:
    """Owned, anonymous, duplicated and animated images with their thumbnails; the bytes
    of each by id, and an API key."""
    account = await flows.register(client, "backup@example.com")
    key = await flows.new_api_key(client, account)
    uploads = [
        ("a.png", images.png(40, 30), account.headers),
        ("b.jpg", images.jpeg(64, 48), account.headers),
        ("a-again.png", images.png(40, 30), {}),  # same bytes: one object, two images
        ("c.png", images.png(20, 50), {}),
    ]
    stored: dict[str, bytes] = {}
    for name, data, headers in uploads:
        response = await client.post(
            "/api/v1/images/upload", files={"file": (name, data)}, headers=headers
        )
        assert response.status_code == 201
        body = response.json()
        stored[body["id"]] = (await client.get(body["url"])).content
        await wait_for_thumbnails(client, body["id"])
    # The library travels too: an album, user tags and the camera details.
    owned = list(stored)[:2]  # a.png and b.jpg, the account's
    for image_id in owned:
        patched = await client.patch(
            f"/api/v1/images/{image_id}",
            json={"tags": ["kept", "beach"], "title": "Kept"},
            headers=account.headers,
        )
        assert patched.status_code == 200, patched.text
    album = await client.post("/api/v1/albums", json={"title": "Trip"}, headers=account.headers)
    assert album.status_code == 201, album.text
    put = await client.put(
        f"/api/v1/albums/{album.json()['id']}/images",
        json={"image_ids": owned},
        headers=account.headers,
    )
    assert put.status_code == 200, put.text
    return stored, key


async def _backup_source(
    tmp_path: Path, settings: Settings
) -> tuple[Path, dict[str, bytes], str, dict[str, dict[str, Any]]]:
    source = Settings(
        _env_file=None,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path / "source",
    )
    assert chitram("migrate", env=_env(source)).returncode == 0
    async with app_client(source) as client:
        stored, key = await _populate(client)
        metadata = {i: (await client.get(f"/api/v1/images/{i}")).json() for i in stored}
    archive = tmp_path / "chitram-backup.tar"
    result = chitram("backup", str(archive), env=_env(source))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"]["images"] == 4
    assert report["rows"]["users"] == 1
    assert report["objects"] == 3 * 4  # 3 originals, 3 thumbnails each
    assert report["missing_objects"] == []
    return archive, stored, key, metadata


async def _check_restored(
    target: Settings, stored: dict[str, bytes], key: str, metadata: dict[str, dict[str, Any]]
) -> None:
    async with app_client(target) as client:
        for image_id, data in stored.items():
            body = (await client.get(f"/api/v1/images/{image_id}")).json()
            assert body == metadata[image_id]
            assert (await client.get(body["url"])).content == data  # byte-identical
            thumb = await client.get(f"/api/v1/images/{image_id}/thumbnail?size=small")
            assert thumb.status_code == 200
        login = await client.post(
            "/api/v1/auth/login", json={"email": "backup@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        owner = {"X-API-Key": key}
        albums = (await client.get("/api/v1/albums", headers=owner)).json()["items"]
        assert [(a["title"], a["image_count"]) for a in albums] == [("Trip", 2)]
        tags = (await client.get("/api/v1/tags", headers=owner)).json()["items"]
        assert {t["name"]: t["count"] for t in tags if t["name"] in ("kept", "beach")} == {
            "kept": 2,
            "beach": 2,
        }
        found = (await client.get("/api/v1/images?q=kept", headers=owner)).json()["items"]
        assert len(found) == 2
        for image_id in (i for i, m in metadata.items() if m["title"] == "Kept"):
            exif = await client.get(f"/api/v1/images/{image_id}/exif", headers=owner)
            assert exif.status_code == 200
        me = (await client.get("/api/v1/auth/me", headers={"X-API-Key": key})).json()
        assert me["image_count"] == 2
        owned = [m for m in metadata.values() if m["filename"] in ("a.png", "b.jpg")]
        assert me["storage_used"] == sum(m["file_size"] for m in owned)
    report = chitram("reconcile", "--dry-run", env=_env(target))
    assert json.loads(report.stdout)["clean"] is True


@pytest.fixture
def database_kind() -> str:
    return "postgres"  # the source is SQLite: a restore also moves between databases


async def test_a_backup_restores_into_an_empty_instance(tmp_path: Path, settings: Settings) -> None:
    archive, stored, key, metadata = await _backup_source(tmp_path, settings)
    restored = chitram("restore", str(archive), env=_env(settings))
    assert restored.returncode == 0, restored.stderr
    await _check_restored(settings, stored, key, metadata)
    again = chitram("restore", str(archive), env=_env(settings))
    assert again.returncode == 1
    assert "not empty" in again.stderr


async def test_a_backup_restores_into_s3(
    tmp_path: Path, settings: Settings, seaweed: SeaweedS3
) -> None:
    archive, stored, key, metadata = await _backup_source(tmp_path, settings)
    target = on_seaweed(settings, seaweed)
    restored = chitram("restore", str(archive), env=_env(target))
    assert restored.returncode == 0, restored.stderr
    await _check_restored(target, stored, key, metadata)


def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-backup.tar"
    bogus.write_bytes(b"\0" * 10240)
    env = {"ENVIRONMENT": "test", "JWT_SECRET": TEST_JWT_SECRET, "DATA_DIR": str(tmp_path / "d")}
    result = chitram("restore", str(bogus), env=env)
    assert result.returncode == 1
    assert "manifest" in result.stderr
