"""Private images and expiry (contract section 10) on every image route, both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from app.config import Settings
from tests.support import images
from tests.support.accounts import Account
from tests.support.flows import register, upload, upload_ok, wait_for_thumbnails

pytestmark = pytest.mark.anyio
IMAGES = "/api/v1/images"


def _routes(image_id: str) -> list[str]:
    return [
        f"{IMAGES}/{image_id}",
        f"{IMAGES}/{image_id}/file",
        f"{IMAGES}/{image_id}/thumbnail?size=small",
        f"/i/{image_id}",
    ]


async def _statuses(
    client: httpx.AsyncClient, image_id: str, headers: dict[str, str] | None = None
) -> list[int]:
    return [
        (
            await client.get(path, headers={"Accept": "application/json", **(headers or {})})
        ).status_code
        for path in _routes(image_id)
    ]


async def _private_image(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    body = await upload_ok(client, account=owner, fields={"visibility": "private"})
    assert body["visibility"] == "private"
    await wait_for_thumbnails(client, body["id"], account=owner)
    return body


async def test_a_private_image_is_its_owners_alone(client: httpx.AsyncClient) -> None:
    owner, other = await register(client), await register(client)
    image = await _private_image(client, owner)
    assert await _statuses(client, image["id"], owner.headers) == [200, 200, 200, 200]
    # Anonymous callers and other users learn nothing: 404, never 403.
    assert await _statuses(client, image["id"]) == [404, 404, 404, 404]
    assert await _statuses(client, image["id"], other.headers) == [404, 404, 404, 404]
    refused = await client.get(f"{IMAGES}/{image['id']}", headers=other.headers)
    assert refused.json()["error"]["code"] == "IMAGE_NOT_FOUND"
    deleted = await client.delete(f"{IMAGES}/{image['id']}", headers=other.headers)
    assert deleted.status_code == 404
    assert deleted.json()["error"]["code"] == "IMAGE_NOT_FOUND"


async def test_private_bytes_are_never_cached_publicly(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await _private_image(client, owner)
    for path in _routes(image["id"])[1:3]:
        response = await client.get(path, headers=owner.headers)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, no-store"
    public = await upload_ok(client, account=owner)
    response = await client.get(f"{IMAGES}/{public['id']}/file")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_a_cached_image_made_private_is_hidden_at_once(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await upload_ok(client, account=owner)
    path = f"{IMAGES}/{image['id']}"
    assert (await client.get(path)).status_code == 200
    assert (await client.get(path)).headers["x-cache"] == "HIT"
    changed = await client.patch(path, json={"visibility": "private"}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    assert await _statuses(client, image["id"]) == [404, 404, 404, 404]


async def test_anonymous_uploads_cannot_be_private(client: httpx.AsyncClient) -> None:
    response = await upload(client, fields={"visibility": "private"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_title_and_description_at_upload(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    body = await upload_ok(
        client, account=owner, fields={"title": "  Sunset  ", "description": "Over the bay"}
    )
    assert (body["title"], body["description"]) == ("Sunset", "Over the bay")
    read = (await client.get(f"{IMAGES}/{body['id']}")).json()
    assert (read["title"], read["description"]) == ("Sunset", "Over the bay")
    assert read["page_url"] == f"http://testserver/i/{body['id']}"
    assert read["display_url"] == read["url"]
    too_long = await upload(client, account=owner, fields={"title": "x" * 201})
    assert too_long.status_code == 422


def _expiry(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))


async def _until(moment: datetime) -> None:
    await anyio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.05)


async def test_an_expired_image_vanishes_everywhere_at_once(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    # Long enough for the reads below on a loaded machine, short enough to wait for.
    body = await upload_ok(client, account=owner, fields={"expires_in": "8"})
    expires_at = _expiry(body)
    assert abs((expires_at - datetime.now(UTC)).total_seconds() - 8) < 3
    await wait_for_thumbnails(client, body["id"], account=owner)
    before = await _statuses(client, body["id"], owner.headers)
    assert before == [200, 200, 200, 200]
    cached = await client.get(f"{IMAGES}/{body['id']}")
    assert cached.headers["x-cache"] == "HIT"  # the cache holds it: expiry must beat it
    file = await client.get(f"{IMAGES}/{body['id']}/file")
    max_age = int(file.headers["cache-control"].split("max-age=")[1])
    assert max_age <= 8  # no cache may keep it past its expiry
    await _until(expires_at)
    assert await _statuses(client, body["id"], owner.headers) == [404, 404, 404, 404]
    listing = (await client.get(IMAGES, headers=owner.headers)).json()
    assert body["id"] not in [item["id"] for item in listing["items"]]
    deleted = await client.delete(f"{IMAGES}/{body['id']}", headers=owner.headers)
    assert deleted.status_code == 404


async def test_expiry_by_header_or_timestamp(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    by_header = await upload_ok(client, account=owner, headers={"Expires-In": "3600"})
    assert abs((_expiry(by_header) - datetime.now(UTC)).total_seconds() - 3600) < 5
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    by_field = await upload_ok(
        client, account=owner, fields={"expires_at": at.isoformat().replace("+00:00", "Z")}
    )
    assert _expiry(by_field) == at
    never = await upload_ok(client, account=owner)
    assert never["expires_at"] is None


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_in": "0"},
        {"expires_in": "-5"},
        {"expires_in": "soon"},
        {"expires_in": "1e9999"},
        {"expires_at": "yesterday"},
        {"expires_at": "2020-01-01T00:00:00Z"},
        {"expires_at": "2099-01-01T00:00:00"},  # no offset
        {"expires_in": "60", "expires_at": "2099-01-01T00:00:00Z"},
        {"visibility": "public"},
    ],
)
async def test_bad_upload_options_are_422(
    client: httpx.AsyncClient, fields: dict[str, str]
) -> None:
    owner = await register(client)
    response = await upload(client, account=owner, fields=fields)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_the_sweeper_deletes_expired_images_as_delete_does(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await register(client)
    body = await upload_ok(
        client, account=owner, data=images.jpeg(), filename="gone.jpg", fields={"expires_in": "1"}
    )
    await wait_for_thumbnails(client, body["id"], account=owner)
    me = (await client.get("/api/v1/auth/me", headers=owner.headers)).json()
    assert me["storage_used"] == body["file_size"]
    objects = [p for p in (settings.data_dir / "objects").rglob("*") if p.is_file()]
    assert objects  # the original and its thumbnails
    with anyio.fail_after(15):
        while True:  # the sweeper runs every 0.2 s in this module
            me = (await client.get("/api/v1/auth/me", headers=owner.headers)).json()
            # The rows go first, the objects once that has committed (as DELETE).
            left = [p for p in objects if p.exists()]
            if me["storage_used"] == 0 and me["image_count"] == 0 and not left:
                break
            await anyio.sleep(0.1)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"expiry_sweep_interval_seconds": 0.2}


class TestAnonymousExpiry:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"anon_max_expires_seconds": 600, "anon_default_expires_seconds": 60}

    async def test_the_default_applies_and_the_cap_holds(self, client: httpx.AsyncClient) -> None:
        default = await upload_ok(client)
        assert abs((_expiry(default) - datetime.now(UTC)).total_seconds() - 60) < 5
        shorter = await upload_ok(client, fields={"expires_in": "30"})
        assert abs((_expiry(shorter) - datetime.now(UTC)).total_seconds() - 30) < 5
        too_long = await upload(client, fields={"expires_in": "601"})
        assert too_long.status_code == 422
        assert too_long.json()["error"]["code"] == "VALIDATION_ERROR"
        # Signed-in owners are not capped.
        owner = await register(client)
        kept = await upload_ok(client, account=owner, fields={"expires_in": "86400"})
        assert abs((_expiry(kept) - datetime.now(UTC)).total_seconds() - 86400) < 5
        forever = await upload_ok(client, account=owner)
        assert forever["expires_at"] is None
