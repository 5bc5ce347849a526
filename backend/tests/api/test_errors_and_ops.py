"""The error envelope, request ids, health and the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.app import app_client

pytestmark = pytest.mark.anyio


async def test_unknown_route_uses_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nope", headers={"X-Request-ID": "abc.123"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "abc.123"
    assert response.json() == {
        "error": {
            "code": "NOT_FOUND",
            "message": "Not found",
            "details": {},
            "request_id": "abc.123",
        }
    }


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/images/upload")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_bad_uuid_is_422_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/images/not-a-uuid")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["loc"] == ["path", "image_id"]


@pytest.mark.parametrize("sent", ["", "x" * 129, "bad id", "ü"])
async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/health", headers=[(b"X-Request-ID", sent.encode())])
    assert response.headers["x-request-id"] != sent
    assert 1 <= len(response.headers["x-request-id"]) <= 128


async def test_browser_gets_html_error_page_outside_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    api = await client.get("/api/v1/nope", headers={"Accept": "text/html"})
    assert api.headers["content-type"].startswith("application/json")


async def test_health_reports_components(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "up"
    assert body["components"]["storage"]["status"] == "up"
    assert set(body["components"]) == {"database", "storage", "cache", "queue"}


async def test_health_is_503_when_the_database_is_down(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
    )
    async with app_client(settings, base_url="http://t") as client:
        response = await client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["components"]["database"]["status"] == "down"
        assert body["components"]["storage"]["status"] == "up"
        metadata = await client.get("/api/v1/images/00000000-0000-4000-8000-000000000000")
        assert metadata.status_code == 503
        assert metadata.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert metadata.headers["retry-after"]


async def test_openapi_documents_every_route_and_error(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/health" in spec["paths"]
    upload = spec["paths"]["/api/v1/images/upload"]["post"]
    assert {"201", "400", "413", "415", "422", "500", "503"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]
    file_get = spec["paths"]["/api/v1/images/{image_id}/file"]["get"]
    assert {"200", "206", "304", "404", "416"} <= set(file_get["responses"])
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert {"401", "500", "503"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_nothing_from_other_sites(client: httpx.AsyncClient, page: str) -> None:
    # Self-hosted and offline installs must get working docs: every script, stylesheet
    # and icon is served by Chitram itself.
    html = (await client.get(page)).text
    assert "https://" not in html
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 500, asset


async def test_access_log_names_the_route_template_and_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="chitram.access")
    await client.get(
        "/api/v1/images/00000000-0000-4000-8000-000000000000", headers={"X-Request-ID": "r-1"}
    )
    [line] = [r for r in caplog.records if r.name == "chitram.access"]
    assert line.route == "/api/v1/images/{image_id}"  # type: ignore[attr-defined]
    assert line.status == 404  # type: ignore[attr-defined]
    assert line.request_id == "r-1"  # type: ignore[attr-defined]
