"""HTTP conformance (contract section 10): `405` names every method of the path in
`Allow`, `HEAD /health` answers, fixed paths never parse as ids, and browsers are told
apart from JSON clients by `Accept`'s preferences."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.anyio

IMAGE = f"/api/v1/images/{uuid.uuid4()}"
KEY = f"/api/v1/auth/api-keys/{uuid.uuid4()}"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/images/batch", "POST"),
        ("GET", "/api/v1/images/upload", "POST"),
        ("DELETE", "/api/v1/images/batch", "POST"),
        ("PUT", IMAGE, "GET, PATCH, DELETE"),
        ("POST", IMAGE, "GET, PATCH, DELETE"),
        ("PUT", "/api/v1/auth/api-keys", "GET, POST"),
        ("POST", KEY, "DELETE"),
        ("POST", f"{IMAGE}/file", "GET, HEAD"),
        ("DELETE", "/health", "GET, HEAD"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("GET", "/logout", "POST"),
        ("PUT", "/login", "GET, POST"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_a_fixed_path_is_not_read_as_an_image_id(client: httpx.AsyncClient) -> None:
    # Malformed ids on the id routes stay 422.
    assert (await client.get("/api/v1/images/batch/file")).status_code == 422
    assert (await client.get("/api/v1/images/not-an-id")).status_code == 422


async def test_head_health_answers_like_get(client: httpx.AsyncClient) -> None:
    get = await client.get("/health")
    head = await client.head("/health")
    assert head.status_code == get.status_code == 200
    assert head.headers["x-request-id"]
    assert head.content == b""


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("text/html", True),
        ("application/json;q=0.5, text/html", True),
        ("text/html, application/json", True),
        ("application/json, text/html;q=0.5", False),
        ("application/json, text/html", False),
        ("application/problem+json, text/html;q=0.9", False),
        ("text/html;q=0, application/json", False),
        ("text/html;q=0", False),
        ("*/*", False),
        ("", False),
    ],
)
async def test_error_pages_follow_accept_preferences(
    client: httpx.AsyncClient, accept: str, html: bool
) -> None:
    response = await client.get("/no-such-page", headers={"Accept": accept})
    assert response.status_code == 404
    kind = "text/html" if html else "application/json"
    assert response.headers["content-type"].startswith(kind)


async def test_the_openapi_document_states_the_rules_the_server_enforces(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    schemas = document["components"]["schemas"]

    password = schemas["UserCreate"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 128)
    key_name = schemas["ApiKeyCreate"]["properties"]["name"]
    assert (key_name["minLength"], key_name["maxLength"]) == (1, 100)
    assert "printable" in key_name["description"]
    token_form = paths["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    form_schema = token_form["application/x-www-form-urlencoded"]["schema"]
    username = schemas[form_schema["$ref"].rsplit("/", 1)[1]]["properties"]["username"]
    assert username["format"] == "email"

    upload = paths["/api/v1/images/upload"]["post"]
    [key] = [p for p in upload["parameters"] if p["name"] == "Idempotency-Key"]
    key_schema = key["schema"]["anyOf"][0]
    assert (key_schema["minLength"], key_schema["maxLength"]) == (1, 255)
    assert key_schema["pattern"] == "^[ -~]+$"
    multipart = upload["requestBody"]["content"]["multipart/form-data"]
    assert multipart["encoding"]["file"]["contentType"] == (
        "image/jpeg, image/png, image/webp, image/gif"
    )
    batch = paths["/api/v1/images/batch"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert batch["schema"]["properties"]["files"]["maxItems"] == 20

    # Optional authentication is optional; required is not.
    assert {} in upload["security"]
    assert {} in paths["/api/v1/images/batch"]["post"]["security"]
    assert {} in paths["/api/v1/images/{image_id}"]["delete"]["security"]
    assert {} not in paths["/api/v1/images"]["get"]["security"]

    limited = {
        ("post", "/api/v1/images/upload"),
        ("get", "/api/v1/images/{image_id}"),
        ("get", "/api/v1/images/{image_id}/file"),
        ("post", "/api/v1/auth/login"),
    }
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "413", "429", "503"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"]
            assert "Retry-After" in responses["503"]["headers"]
            for response in responses.values():
                assert "X-Request-ID" in response["headers"]
            if "requestBody" in operation:
                assert "400" in responses, (method, path)  # bodies that are not UTF-8
            if (method, path) in limited:
                success = responses["201" if method == "post" and "upload" in path else "200"]
                assert "RateLimit-Remaining" in success["headers"], (method, path)
    served = paths["/api/v1/images/{image_id}/file"]["get"]["responses"]["200"]["headers"]
    assert {"ETag", "Last-Modified", "Cache-Control", "Content-Disposition"} <= set(served)
    thumbnail = paths["/api/v1/images/{image_id}/thumbnail"]["get"]["responses"]
    assert "Retry-After" in thumbnail["404"]["headers"]  # THUMBNAIL_NOT_READY
    assert upload["responses"]["415"]["content"]["application/json"]["example"]
    assert schemas["ImageUploaded"]["examples"]
    assert "/health" in paths
    assert "head" in paths["/health"]
