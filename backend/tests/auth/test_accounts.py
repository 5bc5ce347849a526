"""Accounts over HTTP: sign-up, login, the token form, me, API keys (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support import flows, images
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.anyio
AUTH = "/api/v1/auth"


def _error(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_register_signs_in_and_me_reports_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{AUTH}/register", json={"email": "  Alice@Example.COM", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["storage_used"] == 0
    me = await client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {**body["user"], "image_count": 0}
    assert me.json()["storage_quota"] == 1024**3


async def test_emails_are_unique_whatever_their_case(client: httpx.AsyncClient) -> None:
    await flows.register(client, "bob@example.com")
    again = await client.post(
        f"{AUTH}/register", json={"email": "BOB@Example.com", "password": "another password"}
    )
    assert again.status_code == 409
    assert _error(again) == "EMAIL_EXISTS"
    login = await client.post(
        f"{AUTH}/login", json={"email": "Bob@EXAMPLE.com", "password": PASSWORD}
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("password", "status"),
    [
        ("short7!", 422),
        ("x" * 129, 422),
        ("\ud800" * 10, 422),  # a lone surrogate cannot be hashed: 422, never a 500
        ("🔒" * 128, 201),  # 128 characters of any script
        ("пароль-секрет", 201),
        ("x" * 128, 201),
    ],
)
async def test_password_rules(client: httpx.AsyncClient, password: str, status: int) -> None:
    # json.dumps escapes as ASCII, so even a lone surrogate travels as valid JSON text.
    body = json.dumps({"email": "p@example.com", "password": password})
    response = await client.post(
        f"{AUTH}/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    if status == 201:  # and it works for logging in, unchanged, with no truncation
        ok = await client.post(
            f"{AUTH}/login", json={"email": "p@example.com", "password": password}
        )
        assert ok.status_code == 200
        truncated = await client.post(
            f"{AUTH}/login", json={"email": "p@example.com", "password": password[:-1]}
        )
        assert truncated.status_code == 401


async def test_invalid_emails_are_validation_errors(client: httpx.AsyncClient) -> None:
    for email in ("not-an-email", "a@b", "x" * 300 + "@example.com", ""):
        response = await client.post(
            f"{AUTH}/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 422, email
        assert _error(response) == "VALIDATION_ERROR"


async def test_wrong_password_and_unknown_email_answer_alike(client: httpx.AsyncClient) -> None:
    await flows.register(client, "carol@example.com")
    wrong = await client.post(
        f"{AUTH}/login", json={"email": "carol@example.com", "password": "wrong password"}
    )
    unknown = await client.post(
        f"{AUTH}/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    def strip(response: httpx.Response) -> dict[str, Any]:
        return {**response.json()["error"], "request_id": None}

    assert strip(wrong) == strip(unknown)
    assert _error(wrong) == "INVALID_CREDENTIALS"
    huge = await client.post(
        f"{AUTH}/login", json={"email": "carol@example.com", "password": "x" * 5_000}
    )
    assert huge.status_code == 422


async def test_the_token_form_serves_swaggers_authorize_button(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    # What Swagger UI's Authorize button posts: the form, and an empty OAuth2 client in
    # Basic auth (RFC 6749 section 2.3.1), which must not count as a bad credential.
    form = {"grant_type": "password", "username": account.email, "password": PASSWORD}
    swagger = {"Authorization": "Basic Og=="}
    response = await client.post(f"{AUTH}/token", data=form, headers=swagger)
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "token_type"}
    assert response.json()["token_type"] == "bearer"
    assert (await client.post(f"{AUTH}/token", data=form)).status_code == 200
    basic_elsewhere = await client.get(f"{AUTH}/me", headers=swagger)
    assert basic_elsewhere.status_code == 401  # anywhere else it is a bad credential
    token = response.json()["access_token"]
    me = await client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == account.id
    wrong = await client.post(f"{AUTH}/token", data={**form, "password": "nope nope"})
    assert wrong.status_code == 401
    not_email = await client.post(f"{AUTH}/token", data={**form, "username": "nobody"})
    assert not_email.status_code == 422
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key from /auth/api-keys",
    }


async def test_me_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{AUTH}/me")
    assert response.status_code == 401
    assert _error(response) == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_api_keys_create_use_list_and_revoke(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    created = await client.post(
        f"{AUTH}/api-keys", json={"name": "laptop"}, headers=account.headers
    )
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("chk_")
    assert key["prefix"] == key["key"][:12]
    listed = (await client.get(f"{AUTH}/api-keys", headers=account.headers)).json()["items"]
    assert listed == [
        {
            "id": key["id"],
            "name": "laptop",
            "prefix": key["prefix"],
            "created_at": key["created_at"],
            "last_used_at": None,
        }
    ]
    with_key = {"X-API-Key": key["key"]}
    me = await client.get(f"{AUTH}/me", headers=with_key)
    assert me.json()["id"] == account.id
    upload = await client.post(
        "/api/v1/images/upload", files={"file": ("k.png", images.png())}, headers=with_key
    )
    assert upload.status_code == 201
    assert upload.json()["delete_token"] is None  # owned by the key's user
    listed = (await client.get(f"{AUTH}/api-keys", headers=with_key)).json()["items"]
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]

    revoked = await client.delete(f"{AUTH}/api-keys/{key['id']}", headers=account.headers)
    assert revoked.status_code == 204
    assert (await client.get(f"{AUTH}/api-keys", headers=account.headers)).json()["items"] == []
    refused = await client.get(f"{AUTH}/me", headers=with_key)
    assert refused.status_code == 401
    assert _error(refused) == "UNAUTHORIZED"
    again = await client.delete(f"{AUTH}/api-keys/{key['id']}", headers=account.headers)
    assert again.status_code == 404


async def test_api_key_names_are_validated(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    for name in ("", "   ", "x" * 101, "bell\x07"):
        response = await client.post(
            f"{AUTH}/api-keys", json={"name": name}, headers=account.headers
        )
        assert response.status_code == 422, name


async def test_oversized_bodies_are_refused_before_they_are_buffered(
    client: httpx.AsyncClient,
) -> None:
    huge = json.dumps({"email": "big@example.com", "password": "x" * 200_000})
    declared = await client.post(
        f"{AUTH}/register", content=huge, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["details"] == {"max_bytes": 65536}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(huge), 8192):
            yield huge[start : start + 8192].encode()

    streamed = await client.post(
        f"{AUTH}/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert _error(streamed) == "FILE_TOO_LARGE"
