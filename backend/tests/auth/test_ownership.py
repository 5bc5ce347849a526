"""Owned images: listing, deleting, anonymous uploads switched off, and quotas."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.support import flows, images
from tests.support.app import app_client

pytestmark = pytest.mark.anyio
IMAGES = "/api/v1/images"


def _error(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_listing_pages_through_the_callers_images_only(client: httpx.AsyncClient) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    uploaded = [
        (await flows.upload(client, images.png(10 + i, 10), account=owner)).json()["id"]
        for i in range(5)
    ]
    await flows.upload(client, account=other)
    await flows.upload(client)  # anonymous: nobody's

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(IMAGES, params=params, headers=owner.headers)
        assert page.status_code == 200
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == uploaded[::-1]  # newest first, each once
    assert len(set(seen)) == 5
    others = (await client.get(IMAGES, headers=other.headers)).json()
    assert len(others["items"]) == 1
    assert others["next_cursor"] is None
    assert others["items"][0]["id"] not in seen


async def test_listing_needs_a_caller_and_a_valid_cursor(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    anonymous = await client.get(IMAGES)
    assert anonymous.status_code == 401
    assert _error(anonymous) == "UNAUTHORIZED"
    for cursor in ("garbage", "Zm9vfGJhcg", "MjAyNi0xMS0yMlQwOTowMDowMHx4"):
        bad = await client.get(IMAGES, params={"cursor": cursor}, headers=account.headers)
        assert bad.status_code == 400, cursor
        assert _error(bad) == "INVALID_REQUEST"
    for limit in (0, 101):
        out_of_range = await client.get(IMAGES, params={"limit": limit}, headers=account.headers)
        assert out_of_range.status_code == 422


async def test_listing_with_a_cursor_is_stable_when_images_arrive(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)
    first = [
        (await flows.upload(client, images.png(20 + i, 8), account=account)).json()["id"]
        for i in range(3)
    ]
    page = (await client.get(IMAGES, params={"limit": 2}, headers=account.headers)).json()
    newer = (await flows.upload(client, images.png(40, 8), account=account)).json()["id"]
    rest = await client.get(
        IMAGES, params={"limit": 2, "cursor": page["next_cursor"]}, headers=account.headers
    )
    ids = [item["id"] for item in page["items"] + rest.json()["items"]]
    assert ids == first[::-1]  # the newer image waits for the next listing: no duplicate
    assert newer not in ids


async def test_owned_images_are_deleted_by_their_owner_only(client: httpx.AsyncClient) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    body = (await flows.upload(client, account=owner)).json()
    assert body["delete_token"] is None
    assert body["delete_url"] is None
    path = f"{IMAGES}/{body['id']}"
    other_key = {"X-API-Key": await flows.new_api_key(client, other)}
    for headers in (other.headers, other_key, {}, {"X-Delete-Token": "guess"}):
        refused = await client.delete(path, headers=headers)
        assert refused.status_code == 403, headers
        assert _error(refused) == "FORBIDDEN"
    assert (await client.get(path)).status_code == 200
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    assert (await client.get(path)).status_code == 404
    assert (await client.get(body["url"])).status_code == 404


async def test_anonymous_images_keep_delete_tokens(client: httpx.AsyncClient) -> None:
    someone = await flows.register(client)
    body = (await flows.upload(client)).json()
    path = f"{IMAGES}/{body['id']}"
    # Being signed in grants nothing over an anonymous image: the token does.
    missing = await client.delete(path, headers=someone.headers)
    assert (missing.status_code, _error(missing)) == (403, "DELETE_TOKEN_REQUIRED")
    wrong = await client.delete(path, headers={"X-Delete-Token": "x" * 43})
    assert (wrong.status_code, _error(wrong)) == (403, "INVALID_DELETE_TOKEN")
    deleted = await client.delete(
        path, headers={**someone.headers, "X-Delete-Token": body["delete_token"]}
    )
    assert deleted.status_code == 204


async def test_anonymous_uploads_can_be_switched_off(settings: Settings) -> None:
    closed = settings.model_copy(update={"allow_anonymous_uploads": False})
    async with app_client(closed) as client:
        refused = await flows.upload(client)
        assert refused.status_code == 401
        assert _error(refused) == "UNAUTHORIZED"
        batch = await client.post(f"{IMAGES}/batch", files=[("files", ("a.png", images.png()))])
        assert batch.status_code == 401
        account = await flows.register(client)
        assert (await flows.upload(client, account=account)).status_code == 201
        key = {"X-API-Key": await flows.new_api_key(client, account)}
        files = {"file": ("a.png", images.png())}
        response = await client.post(f"{IMAGES}/upload", files=files, headers=key)
        assert response.status_code == 201


def _stored(settings: Settings, data: bytes) -> bool:
    digest = hashlib.sha256(data).hexdigest()
    return any(path.name == digest for path in Path(settings.data_dir).rglob("*"))


async def test_quota_is_exact_and_refuses_before_storing(settings: Settings) -> None:
    first, second, third = images.png(30, 30), images.png(31, 30), images.png(32, 30)
    quota = len(first) + len(second) + len(first)  # room for first, second and first again
    async with app_client(settings.model_copy(update={"default_quota_bytes": quota})) as client:
        account = await flows.register(client)
        for data in (first, second, first):  # the same bytes twice count twice
            assert (await flows.upload(client, data, account=account)).status_code == 201
        me = (await client.get("/api/v1/auth/me", headers=account.headers)).json()
        assert (me["storage_used"], me["image_count"], me["storage_quota"]) == (quota, 3, quota)

        refused = await flows.upload(client, third, account=account)
        assert refused.status_code == 413
        assert _error(refused) == "QUOTA_EXCEEDED"
        assert refused.json()["error"]["details"] == {"storage_used": quota, "storage_quota": quota}
        assert _stored(settings, first)
        assert not _stored(settings, third)
        batch = await client.post(
            f"{IMAGES}/batch", files=[("files", ("t.png", third))], headers=account.headers
        )
        assert batch.status_code == 413  # full before any of the body is read

        # Anonymous uploads are nobody's quota.
        assert (await flows.upload(client, third)).status_code == 201
        listed = (await client.get(IMAGES, headers=account.headers)).json()["items"]
        assert (
            await client.delete(f"{IMAGES}/{listed[0]['id']}", headers=account.headers)
        ).status_code == 204
        me = (await client.get("/api/v1/auth/me", headers=account.headers)).json()
        assert (me["storage_used"], me["image_count"]) == (quota - len(first), 2)
        assert (await flows.upload(client, first, account=account)).status_code == 201


async def test_concurrent_uploads_never_overshoot_the_quota(settings: Settings) -> None:
    import anyio

    blobs = [images.png(50 + i, 20) for i in range(6)]
    quota = sum(sorted(len(b) for b in blobs)[:3])  # room for three at most
    async with app_client(settings.model_copy(update={"default_quota_bytes": quota})) as client:
        account = await flows.register(client)
        statuses: list[int] = []

        async def one(data: bytes) -> None:
            statuses.append((await flows.upload(client, data, account=account)).status_code)

        async with anyio.create_task_group() as group:
            for data in blobs:
                group.start_soon(one, data)
        me = (await client.get("/api/v1/auth/me", headers=account.headers)).json()
        assert me["storage_used"] <= quota
        assert statuses.count(201) == me["image_count"] >= 1
        assert set(statuses) <= {201, 413}
        listed = (await client.get(IMAGES, headers=account.headers)).json()["items"]
        assert sum(item["file_size"] for item in listed) == me["storage_used"]


async def test_idempotency_keys_belong_to_the_caller(client: httpx.AsyncClient) -> None:
    alice, bob = await flows.register(client), await flows.register(client)
    alice_key = {"X-API-Key": await flows.new_api_key(client, alice)}

    async def upload(headers: dict[str, str]) -> dict[str, object]:
        return await flows.upload_ok(
            client, images.png(17, 17), filename="i.png", key="same", headers=headers
        )

    first = await upload(alice.headers)
    assert await upload(alice.headers) == first  # a retry: the same image, no new charge
    assert first["delete_token"] is None
    others = [await upload(h) for h in (bob.headers, alice_key, {})]
    assert len({first["id"], *(o["id"] for o in others)}) == 4  # each caller its own
    me = (await client.get("/api/v1/auth/me", headers=alice.headers)).json()
    assert me["image_count"] == 2  # one by token (retried), one by API key
