"""`chitram reconcile` and thumbnail objects: strays removed, lost ones made again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.models.thumbnail import thumbnail_key
from app.ops.reconcile import reconcile
from app.wiring import Resources, close_resources, open_resources
from tests.support import images
from tests.support.flows import wait_for_thumbnails

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "reconcile_grace_seconds": 0,
        "thumbnail_stale_seconds": 0,
        "thumbnail_sweep_interval_seconds": 1,
        # reconcile runs beside the app, as the CLI would: the app's in-process cache
        # would not hear of the reset for a minute.
        "metadata_cache_ttl_seconds": 0,
    }


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    """What `chitram reconcile` opens, beside the running app."""
    opened = await open_resources(settings)
    yield opened
    await close_resources(opened)


async def test_reconcile_removes_stray_thumbnails_and_remakes_lost_ones(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    response = await client.post(
        "/api/v1/images/upload", files={"file": ("a.jpg", images.noisy_jpeg(640, 480))}
    )
    body = response.json()
    ready = await wait_for_thumbnails(client, body["id"])
    blob = body["checksum"].removeprefix("sha256:")
    stray = thumbnail_key("ab" * 32, "small")
    await resources.storage.put_bytes(stray, b"RIFF....WEBP", "image/webp")
    await resources.storage.delete(thumbnail_key(blob, "large"))

    dry = await reconcile(resources, dry_run=True)
    assert dry.thumbnail_objects_without_row == [stray]
    assert dry.thumbnail_rows_without_object == [blob]
    assert await resources.storage.stat(stray) is not None  # a dry run changes nothing

    repaired = await reconcile(resources, dry_run=False)
    assert repaired.thumbnails_requeued == [body["id"]]
    assert await resources.storage.stat(stray) is None
    again = await wait_for_thumbnails(client, body["id"])  # the app's sweeper remakes them
    assert again["thumbnail_status"] == "ready"
    assert (await client.get(ready["thumbnails"]["large"])).status_code == 200
    assert await resources.storage.stat(thumbnail_key(blob, "large")) is not None
    assert (await reconcile(resources, dry_run=False)).clean
