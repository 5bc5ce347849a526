"""The whole image API on STORAGE_BACKEND=s3 against a real SeaweedFS server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.ops.reconcile import reconcile
from app.wiring import close_resources, open_resources
from tests.support import images
from tests.support.app import app_client
from tests.support.seaweed import SeaweedS3, on_seaweed

pytestmark = [pytest.mark.anyio, pytest.mark.s3]


@pytest.fixture
def s3_settings(settings: Settings, seaweed: SeaweedS3) -> Settings:
    return on_seaweed(settings, seaweed, small_file_bytes=4096)


@pytest.fixture
async def s3_client(s3_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(s3_settings, base_url="http://t") as client:
        yield client


async def test_upload_serve_range_delete_on_s3(s3_client: httpx.AsyncClient) -> None:
    small, large = images.png(8, 8), images.noisy_jpeg(300, 200)
    for data in (small, large):
        body = (await s3_client.post("/api/v1/images/upload", files={"file": ("a", data)})).json()
        assert (await s3_client.get(body["url"])).content == data
        ranged = await s3_client.get(body["url"], headers={"Range": "bytes=3-12"})
        assert ranged.status_code == 206
        assert ranged.content == data[3:13]
        assert (await s3_client.get("/health")).json()["components"]["storage"]["status"] == "up"
        assert (await s3_client.delete(body["delete_url"])).status_code == 204
        assert (await s3_client.get(body["url"])).status_code == 404


async def test_reconcile_on_s3_finds_orphans(s3_settings: Settings, tmp_path: Path) -> None:
    settings = s3_settings.model_copy(update={"reconcile_grace_seconds": 0})
    resources = await open_resources(settings)
    try:
        orphan = "originals/aa/bb/" + "ab" * 32
        await resources.storage.put_bytes(orphan, b"left by a crash", "image/png")
        report = await reconcile(resources, dry_run=False)
        assert report.objects_without_row == [orphan]
        assert await resources.storage.stat(orphan) is None
        assert (await reconcile(resources, dry_run=True)).clean
    finally:
        await close_resources(resources)
