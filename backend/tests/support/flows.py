"""What a client does over HTTP, shared by the tests: sign up, upload, wait for thumbnails."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import anyio
import httpx

from tests.support import images
from tests.support.accounts import PASSWORD, Account

UPLOAD = "/api/v1/images/upload"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> Account:
    """A new account, signed in."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(id=body["user"]["id"], email=body["user"]["email"], token=body["access_token"])


async def new_api_key(client: httpx.AsyncClient, account: Account, name: str = "ci") -> str:
    """The secret of a fresh API key of `account`."""
    response = await client.post(
        "/api/v1/auth/api-keys", json={"name": name}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def upload(
    client: httpx.AsyncClient,
    data: bytes | None = None,
    *,
    filename: str = "a.png",
    content_type: str | None = None,
    account: Account | None = None,
    key: str | None = None,
    ip: str | None = None,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST one file (a small PNG unless `data` is given) as `account`, or anonymously.

    `key` is sent as `Idempotency-Key`, `ip` as `X-Forwarded-For`; without `content_type`
    the part's type is guessed from `filename`, as a browser would."""
    file = (filename, images.png() if data is None else data)
    sent = {
        **(account.headers if account else {}),
        **({"Idempotency-Key": key} if key is not None else {}),
        **({"X-Forwarded-For": ip} if ip is not None else {}),
        **(headers or {}),
    }
    return await client.post(
        UPLOAD,
        files={"file": (*file, content_type) if content_type else file},
        data=dict(fields or {}),
        headers=sent,
    )


async def upload_ok(
    client: httpx.AsyncClient,
    data: bytes | None = None,
    *,
    filename: str = "a.png",
    content_type: str | None = None,
    account: Account | None = None,
    key: str | None = None,
    ip: str | None = None,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`upload(...)`, which must answer 201; its body."""
    response = await upload(
        client,
        data,
        filename=filename,
        content_type=content_type,
        account=account,
        key=key,
        ip=ip,
        headers=headers,
        fields=fields,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_thumbnails(
    client: httpx.AsyncClient,
    image_id: str,
    *,
    seconds: float = 30.0,
    account: Account | None = None,
) -> dict[str, Any]:
    """Poll the image's metadata (as `account`, or anonymously) until its thumbnail
    status is no longer pending."""
    headers = account.headers if account else {}
    with anyio.fail_after(seconds):
        while True:
            response = await client.get(f"/api/v1/images/{image_id}", headers=headers)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["thumbnail_status"] != "pending":
                return body
            await anyio.sleep(0.05)
