"""/metrics after real traffic: every series the contract names moves, labelled by route
template, never by raw id."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.storage.base import StorageUnavailable
from app.storage.memory import MemoryStorage
from tests.support import images
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.app import app_client
from tests.support.metrics import sample

pytestmark = pytest.mark.anyio
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_read": "1000/minute", "rate_limit_upload": "2/minute"}


async def _metrics(client: httpx.AsyncClient) -> str:
    return (await client.get("/metrics")).text


async def test_traffic_moves_every_contract_series(client: httpx.AsyncClient) -> None:
    before = await _metrics(client)
    data = images.png(33, 21)
    image = (await client.post("/api/v1/images/upload", files={"file": ("a.png", data)})).json()
    refused = await client.post("/api/v1/images/upload", files={"file": ("b.png", b"text")})
    assert refused.status_code == 415
    for _ in range(3):
        assert (await client.get(f"/api/v1/images/{image['id']}")).status_code == 200
    await client.get(f"/api/v1/images/{uuid.uuid4()}")
    await client.get("/no/such/path")
    await client.request("BREW", "/api/v1/images")
    limited = await client.post("/api/v1/images/upload", files={"file": ("c.png", data)})
    assert limited.status_code == 429
    after = await _metrics(client)

    def moved(series: str) -> float:
        return sample(after, series) - sample(before, series)

    read = 'method="GET",route="/api/v1/images/{image_id}"'
    assert moved(f'chitram_http_requests_total{{{read},status="200"}}') == 3
    assert moved(f'chitram_http_requests_total{{{read},status="404"}}') == 1
    assert moved(f"chitram_http_request_duration_seconds_count{{{read}}}") == 4
    assert moved('chitram_http_requests_total{method="GET",route="<unmatched>",status="404"}') == 1
    assert (
        moved('chitram_http_requests_total{method="OTHER",route="<unmatched>",status="405"}') >= 0
    )
    assert moved('chitram_uploads_total{result="accepted"}') == 1
    assert moved('chitram_uploads_total{result="invalid_file_format"}') == 1
    assert moved("chitram_upload_bytes_total") == image["file_size"]
    assert moved('chitram_cache_requests_total{result="miss"}') == 2  # the image, the unknown id
    assert moved('chitram_cache_requests_total{result="hit"}') == 2
    assert moved('chitram_rate_limited_total{limit="upload"}') == 1
    assert "chitram_thumbnail_queue_depth" in after
    assert 'chitram_thumbnail_jobs_total{result="ready"}' in after
    assert "chitram_database_errors_total" in after
    # Route templates only: no id of any image or request ever becomes a label.
    labels = [line for line in after.splitlines() if not line.startswith("#")]
    assert not [line for line in labels if UUID.search(line.split(" ")[0])]


class BrokenStore(MemoryStorage):
    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        raise StorageUnavailable("disk on fire")  # what a backend raises when it fails


async def test_storage_and_database_errors_are_counted(settings: Settings, tmp_path: Path) -> None:
    async with app_client(settings, storage=BrokenStore()) as client:
        before = await _metrics(client)
        failed = await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
        assert failed.status_code == 503
        after = await _metrics(client)
    errors = 'chitram_storage_errors_total{operation="put"}'
    assert sample(after, errors) - sample(before, errors) == 1
    broken = Settings(
        _env_file=None,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",  # nothing listens
    )
    async with app_client(broken) as client:
        before = await _metrics(client)
        response = await client.get(f"/api/v1/images/{uuid.uuid4()}")
        assert response.status_code == 503
        after = await _metrics(client)
    assert sample(after, "chitram_database_errors_total") > sample(
        before, "chitram_database_errors_total"
    )
