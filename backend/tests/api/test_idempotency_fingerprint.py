"""An Idempotency-Key replays only the very request it answered.

A retry of the same request gets the same 201 body; the same key with another request
(another file or name, an empty or missing body) is 422 `IDEMPOTENCY_KEY_REUSED` and
never hands out the first image or its delete token. The batch route takes no key."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from tests.support import flows, images

pytestmark = pytest.mark.anyio

CALLER = "203.0.113.7"


def _assert_reused(response: httpx.Response, first: dict[str, Any]) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert first["id"] not in response.text
    assert first["delete_token"] not in response.text


async def test_the_same_request_replays_the_same_body(client: httpx.AsyncClient) -> None:
    first = await flows.upload(client, key="same", ip=CALLER)
    again = await flows.upload(client, key="same", ip=CALLER)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["delete_token"]  # an anonymous retry gets its token back
    assert (await client.delete(again.json()["delete_url"])).status_code == 204


async def test_another_file_is_refused(client: httpx.AsyncClient) -> None:
    first = (await flows.upload(client, key="k", ip=CALLER)).json()
    _assert_reused(await flows.upload(client, images.png(9, 9), key="k", ip=CALLER), first)
    # the first request is still the one the key answers
    assert (await flows.upload(client, key="k", ip=CALLER)).json() == first


async def test_the_same_bytes_under_another_name_is_another_request(
    client: httpx.AsyncClient,
) -> None:
    first = (await flows.upload(client, key="k", ip=CALLER)).json()
    _assert_reused(await flows.upload(client, filename="b.png", key="k", ip=CALLER), first)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"files": {"file": ("a.png", b"", "image/png")}}, id="empty file part"),
        pytest.param({"files": {"other": ("a.png", images.png(), "image/png")}}, id="no file"),
        pytest.param({"data": {"file": "not a file"}}, id="form field only"),
        pytest.param(
            {"content": b"", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
            id="empty multipart body",
        ),
        pytest.param({}, id="no body at all"),
        pytest.param(
            {"content": images.png(), "headers": {"Content-Type": "image/png"}},
            id="not multipart",
        ),
    ],
)
async def test_a_request_without_the_file_is_refused(
    client: httpx.AsyncClient, request_kwargs: dict[str, Any]
) -> None:
    first = (await flows.upload(client, key="k", ip=CALLER)).json()
    headers = {"Idempotency-Key": "k", "X-Forwarded-For": CALLER}
    headers.update(request_kwargs.pop("headers", {}))
    _assert_reused(await client.post(flows.UPLOAD, headers=headers, **request_kwargs), first)


async def test_a_fresh_key_with_no_body_is_still_a_validation_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        flows.UPLOAD, headers={"Idempotency-Key": "never-used", "X-Forwarded-For": CALLER}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_key_belongs_to_one_caller_and_one_route(client: httpx.AsyncClient) -> None:
    first = (await flows.upload(client, key="shared", ip=CALLER)).json()
    # another anonymous caller, and a signed-in one, may use the same key for their own
    elsewhere = await flows.upload(client, key="shared", ip="203.0.113.8")
    account = await flows.register(client)
    signed_in = await flows.upload(client, key="shared", ip=CALLER, headers=account.headers)
    assert elsewhere.status_code == signed_in.status_code == 201
    assert len({first["id"], elsewhere.json()["id"], signed_in.json()["id"]}) == 3
    assert "delete_token" not in signed_in.json() or signed_in.json()["delete_token"] is None
    # the batch route takes no Idempotency-Key (contract section 3): the header neither
    # replays the upload nor spends the key
    batch = await client.post(
        "/api/v1/images/batch",
        files=[("files", ("a.png", images.png(), "image/png"))],
        headers={"Idempotency-Key": "shared", "X-Forwarded-For": CALLER},
    )
    assert batch.status_code == 200
    [result] = batch.json()["results"]
    assert result["status"] == 201
    assert result["image"]["id"] != first["id"]
    assert (await flows.upload(client, key="shared", ip=CALLER)).json() == first


async def test_concurrent_requests_with_one_key_and_different_files(
    client: httpx.AsyncClient,
) -> None:
    """Whichever wins, the other is refused: the loser of the race compares too."""
    responses = await asyncio.gather(
        flows.upload(client, images.png(8, 8), key="race", ip=CALLER),
        flows.upload(client, images.png(9, 9), key="race", ip=CALLER),
    )
    assert sorted(r.status_code for r in responses) == [201, 422]
    [loser] = [r for r in responses if r.status_code == 422]
    assert loser.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_a_record_without_a_fingerprint_replays_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Records kept before fingerprints existed match no request (fail closed)."""
    first = (await flows.upload(client, key="old", ip=CALLER)).json()
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE idempotency_keys SET request_fingerprint = NULL"))
    finally:
        await engine.dispose()
    _assert_reused(await flows.upload(client, key="old", ip=CALLER), first)
