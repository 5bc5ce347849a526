"""PATCH /images/{id} (contract section 10) and the tag rules (section 11), on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.images import repository
from tests.library.search_flows import IMAGES, found, new_image, patch, patch_ok, write
from tests.support.flows import register, upload_ok

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """No automatic tags: these tests count and search the tags they set themselves."""
    return {"tagger": "none"}


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "VALIDATION_ERROR"
    errors: list[dict[str, Any]] = body["details"]["errors"]
    return errors


async def test_the_owner_changes_every_field(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(client, owner)
    expires = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    changed = await patch_ok(
        client,
        owner,
        image["id"],
        title="  Sunset  ",
        description="Line one\nline two",
        visibility="private",
        expires_at=expires.isoformat(),
        tags=["Holiday", "  Bay   Area ", "holiday", "日本", "hand-made_2"],
    )
    assert changed["title"] == "Sunset"
    assert changed["description"] == "Line one\nline two"
    assert changed["visibility"] == "private"
    assert datetime.fromisoformat(changed["expires_at"]) == expires
    assert changed["tags"] == sorted(["holiday", "bay area", "日本", "hand-made_2"])
    assert changed["tags_auto"] == []
    assert changed["album_ids"] == []
    # Every read sees it at once (the cached metadata was dropped).
    again = (await client.get(f"{IMAGES}/{image['id']}", headers=owner.headers)).json()
    assert {k: again[k] for k in ("title", "visibility", "tags", "expires_at")} == {
        k: changed[k] for k in ("title", "visibility", "tags", "expires_at")
    }
    assert (await client.get(f"{IMAGES}/{image['id']}")).status_code == 404  # now private


async def test_only_the_fields_sent_change_and_null_clears(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(
        client,
        owner,
        title="Kept",
        description="Kept too",
        tags=["kept"],
        expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
    )
    same = await patch_ok(client, owner, image["id"])
    assert (same["title"], same["description"], same["tags"]) == ("Kept", "Kept too", ["kept"])
    cleared = await patch_ok(
        client, owner, image["id"], title="", description=None, expires_at=None
    )
    assert cleared["title"] is None
    assert cleared["description"] is None
    assert cleared["expires_at"] is None
    assert cleared["tags"] == ["kept"]
    assert (await patch_ok(client, owner, image["id"], tags=None))["tags"] == []


async def test_bad_fields_are_422(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(client, owner)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    bad: list[dict[str, Any]] = [
        {"title": "x" * 201},
        {"description": "x" * 2001},
        {"title": "bell\x07"},
        {"visibility": "public"},
        {"visibility": None},
        {"expires_at": past},
        {"expires_at": "2099-01-01T00:00:00"},  # no offset
        {"expires_at": "soon"},
        {"expires_at": "9999-12-31T00:00:00Z"},
        {"owner_id": str(uuid.uuid4())},  # unknown fields are refused, not ignored
        {"tags": "cat"},
        {"tags": [1]},
    ]
    for body in bad:
        errors = _errors(await patch(client, owner, image["id"], **body))
        assert errors[0]["loc"][:2] == ["body", next(iter(body))], (body, errors)
    for raw in ("[1]", "null", "{", '"x"'):
        response = await client.patch(
            f"{IMAGES}/{image['id']}",
            content=raw,
            headers={**owner.headers, "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), (raw, response.text)
    unchanged = (await client.get(f"{IMAGES}/{image['id']}")).json()
    assert (unchanged["title"], unchanged["expires_at"]) == (None, None)


@pytest.mark.parametrize(
    "tag",
    ["<b>", "#tag", "😀", "", "   ", "a" * 51, "tab\tok?", "a/b", "x\u200dy", "\ufe0f"],
)
async def test_bad_tags_are_named(client: httpx.AsyncClient, tag: str) -> None:
    owner = await register(client)
    image = await new_image(client, owner)
    errors = _errors(await patch(client, owner, image["id"], tags=["fine", tag]))
    assert len(errors) == 1
    assert errors[0]["loc"] == ["body", "tags", 1]
    normalised = " ".join(tag.lower().split())
    if normalised:  # the message names the tag
        assert repr(normalised)[1:-1][:50] in errors[0]["msg"]


async def test_tag_limits(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(client, owner)
    fifty = [f"tag {n}" for n in range(50)]
    assert len((await patch_ok(client, owner, image["id"], tags=fifty))["tags"]) == 50
    # Duplicates after normalisation collapse before counting...
    assert len((await patch_ok(client, owner, image["id"], tags=[*fifty, "TAG 0"]))["tags"]) == 50
    # ... but 51 distinct tags are too many.
    errors = _errors(await patch(client, owner, image["id"], tags=[*fifty, "one more"]))
    assert errors[0]["loc"] == ["body", "tags"]
    assert "50" in errors[0]["msg"]
    longest = "é" * 50
    assert (await patch_ok(client, owner, image["id"], tags=[longest]))["tags"] == [longest]


async def test_tags_replace_only_the_users(client: httpx.AsyncClient, settings: Settings) -> None:
    owner = await register(client)
    image = await new_image(client, owner, tags=["mine"])

    def tagger(connection: Any) -> None:
        assert repository.replace_tags(
            connection, uuid.UUID(image["id"]), uuid.UUID(owner.id), "auto", ["landscape", "mine"]
        )

    await write(settings, tagger)
    changed = await patch_ok(client, owner, image["id"], tags=["new"])
    assert changed["tags"] == ["landscape", "mine", "new"]
    assert changed["tags_auto"] == ["landscape", "mine"]
    cleared = await patch_ok(client, owner, image["id"], tags=[])
    assert cleared["tags"] == cleared["tags_auto"] == ["landscape", "mine"]
    assert await found(client, owner, tag="landscape") == [image["id"]]
    assert await found(client, owner, tag="new") == []


async def test_who_may_patch(client: httpx.AsyncClient, settings: Settings) -> None:
    owner, other = await register(client), await register(client)
    unlisted = await new_image(client, owner)
    private = await new_image(client, owner, visibility="private")
    anonymous = await upload_ok(client)
    expired = await new_image(client, owner)
    await write(
        settings,
        lambda connection: repository.update_image(
            connection,
            uuid.UUID(expired["id"]),
            uuid.UUID(owner.id),
            {"expires_at": datetime.now(UTC) - timedelta(seconds=1)},
        ),
    )
    cases = [
        (None, unlisted["id"], 401, "UNAUTHORIZED"),
        (other, unlisted["id"], 403, "FORBIDDEN"),
        (other, private["id"], 404, "IMAGE_NOT_FOUND"),
        (other, anonymous["id"], 403, "FORBIDDEN"),
        (owner, anonymous["id"], 403, "FORBIDDEN"),
        (owner, str(uuid.uuid4()), 404, "IMAGE_NOT_FOUND"),
        (owner, expired["id"], 404, "IMAGE_NOT_FOUND"),
    ]
    for account, image_id, status, code in cases:
        response = await patch(client, account, image_id, title="mine now")
        assert response.status_code == status, (account, image_id, response.text)
        assert response.json()["error"]["code"] == code
    assert (await patch(client, owner, "not-an-id", title="x")).status_code == 422
    # Nothing changed for anyone.
    body = (await client.get(f"{IMAGES}/{unlisted['id']}")).json()
    assert body["title"] is None
