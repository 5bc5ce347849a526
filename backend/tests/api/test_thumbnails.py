"""Thumbnails in the embedded shape: made in-process after upload, served, deleted."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.config import Settings
from tests.images import factories
from tests.support import flows, images
from tests.support.metrics import sample
from tests.support.serving import assert_serving_headers

pytestmark = pytest.mark.anyio
BOXES = {"small": 150, "medium": 300, "large": 800}


def _objects(settings: Settings, prefix: str) -> list[Path]:
    root = settings.data_dir / "objects" / prefix
    return [p for p in root.rglob("*") if p.is_file()]


async def test_upload_answers_pending_then_thumbnails_become_ready(
    client: httpx.AsyncClient,
) -> None:
    body = await flows.upload_ok(client, images.noisy_jpeg(1600, 1200), filename="photo.jpg")
    assert body["thumbnail_status"] == "pending"
    assert body["thumbnail_ready"] is False
    assert body["thumbnail_url"] is None
    assert body["thumbnails"] == {"small": None, "medium": None, "large": None}

    ready = await flows.wait_for_thumbnails(client, body["id"])
    assert ready["thumbnail_status"] == "ready"
    assert ready["thumbnail_ready"] is True
    base = f"http://testserver/api/v1/images/{body['id']}/thumbnail"
    assert ready["thumbnails"] == {size: f"{base}?size={size}" for size in BOXES}
    assert ready["thumbnail_url"] == f"{base}?size=medium"
    for size, box in BOXES.items():
        response = await client.get(ready["thumbnails"][size])
        assert response.status_code == 200
        thumb = Image.open(BytesIO(response.content))
        assert thumb.format == "WEBP"
        assert max(thumb.size) == box
        assert thumb.size[0] / thumb.size[1] == pytest.approx(4 / 3, rel=0.02)


async def test_thumbnail_defaults_to_medium_and_has_the_serving_headers(
    client: httpx.AsyncClient,
) -> None:
    body = await flows.upload_ok(client, images.noisy_jpeg(900, 600), filename="Ünïcode café.jpg")
    await flows.wait_for_thumbnails(client, body["id"])
    path = f"/api/v1/images/{body['id']}/thumbnail"
    response = await client.get(path)
    assert response.status_code == 200
    assert Image.open(BytesIO(response.content)).size == (300, 200)
    h = response.headers
    assert h["content-type"] == "image/webp"
    assert h["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    assert_serving_headers(
        response,
        content_disposition=(
            'inline; filename="Unicode cafe-medium.webp"; '
            "filename*=UTF-8''%C3%9Cn%C3%AFcode%20caf%C3%A9-medium.webp"
        ),
    )

    head = await client.head(path, params={"size": "small"})
    assert head.status_code == 200
    assert head.content == b""
    small = await client.get(path, params={"size": "small"})
    assert head.headers["content-length"] == str(len(small.content))

    cached = await client.get(path, headers={"If-None-Match": h["etag"]})
    assert cached.status_code == 304
    ranged = await client.get(path, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert ranged.content == response.content[:10]
    beyond = await client.get(path, headers={"Range": f"bytes={len(response.content)}-"})
    assert beyond.status_code == 416


async def test_unknown_size_and_unknown_image_are_refused(client: httpx.AsyncClient) -> None:
    body = await flows.upload_ok(client, images.png(40, 40), filename="photo.jpg")
    response = await client.get(f"/api/v1/images/{body['id']}/thumbnail", params={"size": "huge"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    missing = await client.get("/api/v1/images/00000000-0000-4000-8000-000000000000/thumbnail")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "IMAGE_NOT_FOUND"


@pytest.mark.parametrize(
    ("name", "data", "displayed", "mode"),
    [
        # Its EXIF says orientation 6: displayed portrait.
        ("cmyk.jpg", factories.cmyk_jpeg((400, 300)), (300, 400), "RGB"),
        (
            "sixteen.png",
            factories.save(Image.new("I;16", (1000, 500), 30_000), "PNG"),
            (800, 400),
            "RGB",
        ),
        (
            "la.png",
            factories.save(Image.new("LA", (300, 600), (90, 128)), "PNG"),
            (300, 600),
            "RGBA",
        ),
        (
            "palette.png",
            factories.save(Image.new("RGBA", (500, 500), (9, 9, 9, 0)).convert("P"), "PNG"),
            (500, 500),
            "RGBA",
        ),
        ("bilevel.png", factories.bilevel_png(1200, 900), (800, 600), "RGB"),
        (
            "rotated.jpg",
            factories.save(
                factories.picture((1600, 800)),
                "JPEG",
                exif=factories.orientation_only_exif(6),
            ),
            (400, 800),
            "RGB",
        ),
        # Pillow decodes every animated WebP as RGBA.
        ("animated.gif", factories.animated_gif(frames=5, size=(320, 240)), (320, 240), "RGBA"),
        ("animated.webp", factories.animated_webp(frames=5, size=(320, 240)), (320, 240), "RGBA"),
    ],
)
async def test_awkward_images_reach_ready_with_correct_sizes(
    client: httpx.AsyncClient,
    name: str,
    data: bytes,
    displayed: tuple[int, int],
    mode: str,
) -> None:
    body = await flows.upload_ok(client, data, filename=name)
    ready = await flows.wait_for_thumbnails(client, body["id"])
    assert ready["thumbnail_status"] == "ready", name
    large = Image.open(BytesIO((await client.get(ready["thumbnails"]["large"])).content))
    assert large.size == displayed, name
    assert large.mode == mode, name
    assert (body["width"], body["height"])[0] / (body["width"], body["height"])[1] == (
        pytest.approx(displayed[0] / displayed[1], rel=0.01)
    )
    if name.startswith("animated"):
        assert getattr(large, "n_frames", 1) == 5


async def test_delete_removes_thumbnails_at_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = await flows.upload_ok(client, images.noisy_jpeg(600, 400), filename="photo.jpg")
    ready = await flows.wait_for_thumbnails(client, body["id"])
    for url in ready["thumbnails"].values():
        assert (await client.get(url)).status_code == 200  # also fills the object cache
    assert len(_objects(settings, "thumbnails")) == 3
    assert (await client.delete(body["delete_url"])).status_code == 204
    for url in ready["thumbnails"].values():
        gone = await client.get(url)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "IMAGE_NOT_FOUND"
        assert (await client.head(url)).status_code == 404
    assert _objects(settings, "thumbnails") == []


async def test_identical_uploads_share_thumbnails_until_the_last_is_deleted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    data = images.noisy_jpeg(500, 400)
    first = await flows.upload_ok(client, data, filename="photo.jpg")
    await flows.wait_for_thumbnails(client, first["id"])
    second = await flows.upload_ok(client, data, filename="photo.jpg")
    ready = await flows.wait_for_thumbnails(client, second["id"])
    assert ready["thumbnail_status"] == "ready"
    assert len(_objects(settings, "thumbnails")) == 3
    assert (await client.delete(first["delete_url"])).status_code == 204
    assert (await client.get(ready["thumbnail_url"])).status_code == 200
    assert (await client.delete(second["delete_url"])).status_code == 204
    assert _objects(settings, "thumbnails") == []


async def test_health_and_metrics_report_the_in_process_queue(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert health["components"]["queue"]["status"] == "up"
    before = (await client.get("/metrics")).text
    body = await flows.upload_ok(client, images.noisy_jpeg(300, 200), filename="photo.jpg")
    await flows.wait_for_thumbnails(client, body["id"])
    metrics = (await client.get("/metrics")).text
    assert "chitram_thumbnail_queue_depth 0.0" in metrics
    assert (
        sample(metrics, 'chitram_thumbnail_jobs_total{result="ready"}')
        >= sample(before, 'chitram_thumbnail_jobs_total{result="ready"}') + 1
    )
    assert sample(metrics, "chitram_thumbnail_job_duration_seconds_count") >= 1
