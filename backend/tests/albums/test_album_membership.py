"""An album's images: set, append and remove them, only the caller's own, at most 1,000;
the images' `album_ids` follow at once, caches included."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.models import Image
from tests.albums.support import ALBUMS, album_image_ids, code, create, put_images, upload_many
from tests.support import flows
from tests.support.accounts import Account

pytestmark = pytest.mark.anyio
IMAGES = "/api/v1/images"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _album_ids(client: httpx.AsyncClient, account: Account, image_id: str) -> list[str]:
    response = await client.get(f"{IMAGES}/{image_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["album_ids"]
    return ids


async def _post_images(
    client: httpx.AsyncClient, account: Account, album_id: str, image_ids: list[str]
) -> httpx.Response:
    return await client.post(
        f"{ALBUMS}/{album_id}/images", json={"image_ids": image_ids}, headers=account.headers
    )


async def test_put_sets_membership_and_order(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    a, b, c, d = await upload_many(client, owner, 4)
    for image_id in (a, b, c, d):  # in the metadata cache before the change
        assert await _album_ids(client, owner, image_id) == []
    await anyio.sleep(0.01)

    response = await put_images(client, owner, album["id"], [c, a, c, b, a])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image_count"] == 3
    assert body["id"] == album["id"]
    assert _when(body["updated_at"]) > _when(album["updated_at"])
    assert await album_image_ids(client, album["id"], owner) == [c, a, b]  # first position wins
    for image_id in (a, b, c):
        assert await _album_ids(client, owner, image_id) == [album["id"]]
    assert await _album_ids(client, owner, d) == []

    again = await put_images(client, owner, album["id"], [d, b])
    assert again.status_code == 200
    assert again.json()["image_count"] == 2
    assert await album_image_ids(client, album["id"], owner) == [d, b]
    assert await _album_ids(client, owner, a) == []
    assert await _album_ids(client, owner, c) == []
    assert await _album_ids(client, owner, d) == [album["id"]]

    emptied = await put_images(client, owner, album["id"], [])
    assert emptied.json()["image_count"] == 0
    assert await album_image_ids(client, album["id"], owner) == []
    assert await _album_ids(client, owner, b) == []


async def test_an_image_lists_every_album_holding_it(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    first, second = await create(client, owner), await create(client, owner)
    [image] = await upload_many(client, owner, 1)
    assert (await put_images(client, owner, first["id"], [image])).status_code == 200
    assert (await _post_images(client, owner, second["id"], [image])).status_code == 200
    assert set(await _album_ids(client, owner, image)) == {first["id"], second["id"]}
    others = await client.get(f"{IMAGES}/{image}")
    assert others.json()["album_ids"] == []
    listed = (await client.get(IMAGES, headers=owner.headers)).json()["items"][0]
    assert set(listed["album_ids"]) == {first["id"], second["id"]}


async def test_only_the_callers_own_images_go_in(client: httpx.AsyncClient) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    album = await create(client, owner)
    [mine] = await upload_many(client, owner, 1)
    [theirs] = await upload_many(client, other, 1)
    anonymous = (await flows.upload_ok(client))["id"]
    assert (await put_images(client, owner, album["id"], [mine])).status_code == 200

    for foreign in (theirs, anonymous, str(uuid.uuid4())):
        for send in (put_images, _post_images):
            response = await send(client, owner, album["id"], [mine, foreign])
            assert response.status_code == 403, (send, foreign)
            assert code(response) == "FORBIDDEN"
    assert await album_image_ids(client, album["id"], owner) == [mine]
    assert await _album_ids(client, other, theirs) == []
    bodies: list[dict[str, Any]] = [
        {},
        {"image_ids": ["nope"]},
        {"image_ids": None},
        {"image_ids": mine},
        {"image_ids": [mine], "position": 3},
    ]
    for body in bodies:
        response = await client.put(
            f"{ALBUMS}/{album['id']}/images", json=body, headers=owner.headers
        )
        assert response.status_code == 422, body
        assert code(response) == "VALIDATION_ERROR"


async def test_post_appends_the_new_images_in_order(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    a, b, c, d = await upload_many(client, owner, 4)
    assert (await put_images(client, owner, album["id"], [b])).status_code == 200
    await _album_ids(client, owner, d)  # cached
    await anyio.sleep(0.01)

    response = await _post_images(client, owner, album["id"], [d, b, a, d])
    assert response.status_code == 200, response.text
    assert response.json()["image_count"] == 3
    assert await album_image_ids(client, album["id"], owner) == [b, d, a]
    assert await _album_ids(client, owner, d) == [album["id"]]
    before = response.json()["updated_at"]

    unchanged = await _post_images(client, owner, album["id"], [a, b])
    assert unchanged.status_code == 200
    assert unchanged.json()["updated_at"] == before  # nothing changed
    assert (await _post_images(client, owner, album["id"], [c])).json()["image_count"] == 4
    assert await album_image_ids(client, album["id"], owner) == [b, d, a, c]


async def test_removing_one_image(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    path = f"{ALBUMS}/{album['id']}"
    a, b, outside = await upload_many(client, owner, 3)
    assert (await put_images(client, owner, album["id"], [a, b])).status_code == 200
    covered = await client.patch(path, json={"cover_image_id": a}, headers=owner.headers)
    assert covered.status_code == 200
    assert await _album_ids(client, owner, a) == [album["id"]]  # cached

    removed = await client.delete(f"{path}/images/{a}", headers=owner.headers)
    assert removed.status_code == 204
    assert removed.content == b""
    after = (await client.get(path, headers=owner.headers)).json()
    assert [image["id"] for image in after["images"]] == [b]
    assert after["cover_image_id"] is None  # the cover left with it
    assert _when(after["updated_at"]) > _when(covered.json()["updated_at"])
    assert await _album_ids(client, owner, a) == []
    assert (await client.get(f"{IMAGES}/{a}")).status_code == 200  # the image stays

    for image_id in (a, outside, str(uuid.uuid4())):
        missing = await client.delete(f"{path}/images/{image_id}", headers=owner.headers)
        assert missing.status_code == 404, image_id
        assert code(missing) == "IMAGE_NOT_FOUND"


async def test_deleting_an_image_takes_it_out_of_its_albums(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    path = f"{ALBUMS}/{album['id']}"
    a, b = await upload_many(client, owner, 2)
    assert (await put_images(client, owner, album["id"], [a, b])).status_code == 200
    assert (
        await client.patch(path, json={"cover_image_id": a}, headers=owner.headers)
    ).status_code == 200

    assert (await client.delete(f"{IMAGES}/{a}", headers=owner.headers)).status_code == 204
    after = (await client.get(path, headers=owner.headers)).json()
    assert after["image_count"] == 1
    assert after["cover_image_id"] is None
    assert [image["id"] for image in after["images"]] == [b]


class TestTheLimit:
    """An album holds at most 1,000 images."""

    async def test_a_1001st_member_is_refused(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        owner = await flows.register(client)
        album = await create(client, owner)
        ids = await _copies_of_an_upload(client, settings, owner, 1001)

        too_many = await put_images(client, owner, album["id"], ids)
        assert too_many.status_code == 422
        assert code(too_many) == "VALIDATION_ERROR"
        assert too_many.json()["error"]["details"]["errors"][0]["loc"] == ["body", "image_ids"]

        full = await put_images(client, owner, album["id"], ids[:1000])
        assert full.status_code == 200, full.text
        assert full.json()["image_count"] == 1000
        one_more = await _post_images(client, owner, album["id"], [ids[1000], ids[0]])
        assert one_more.status_code == 422
        assert code(one_more) == "VALIDATION_ERROR"
        assert one_more.json()["error"]["details"]["errors"][0]["loc"] == ["body", "image_ids"]
        already_in = await _post_images(client, owner, album["id"], ids[:3])
        assert already_in.status_code == 200  # nothing new: still 1,000
        assert already_in.json()["image_count"] == 1000
        removed = await client.delete(
            f"{ALBUMS}/{album['id']}/images/{ids[5]}", headers=owner.headers
        )
        assert removed.status_code == 204
        last = await _post_images(client, owner, album["id"], [ids[1000]])
        assert last.status_code == 200
        assert last.json()["image_count"] == 1000
        order = await album_image_ids(client, album["id"], owner)
        assert order == [*ids[:5], *ids[6:1000], ids[1000]]


async def _copies_of_an_upload(
    client: httpx.AsyncClient, settings: Settings, owner: Account, count: int
) -> list[str]:
    """`count` images of `owner`: one upload, then copies of its row under new ids.

    Uploading a thousand images takes half a minute per database here; what is under
    test is the album, and to it a copied row is an image like any other."""
    first = (await flows.upload_ok(client, account=owner))["id"]
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.begin() as connection:
            row = (
                (await connection.execute(select(Image).where(Image.id == uuid.UUID(first))))
                .mappings()
                .one()
            )
            copies = [
                {
                    **row,
                    "id": uuid.uuid4(),
                    "created_at": row["created_at"] + timedelta(microseconds=n),
                }
                for n in range(1, count)
            ]
            await connection.execute(insert(Image), copies)
    finally:
        await engine.dispose()
    return [first, *(str(copy["id"]) for copy in copies)]
