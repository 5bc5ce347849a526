"""Albums (contract section 11): create, list, read, change and delete, and who may."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest

from tests.albums.support import ALBUMS, album_image_ids, code, create, put_images, upload_many
from tests.support import flows

pytestmark = pytest.mark.anyio


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_new_album_is_empty_and_links_to_itself(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    response = await client.post(
        ALBUMS,
        json={"title": "  Lisbon  ", "description": "Trams and tiles"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    album = response.json()
    album_id = album["id"]
    assert uuid.UUID(album_id)
    assert album["title"] == "Lisbon"  # trimmed
    assert album["description"] == "Trams and tiles"
    assert album["visibility"] == "unlisted"
    assert album["cover_image_id"] is None
    assert album["image_count"] == 0
    assert album["created_at"] == album["updated_at"]
    assert album["url"] == f"http://testserver/api/v1/albums/{album_id}"
    assert album["page_url"] == f"http://testserver/a/{album_id}"

    read = await client.get(album["url"], headers=owner.headers)
    assert read.status_code == 200
    assert read.json() == {**album, "images": [], "next_cursor": None}
    private = await create(client, owner, title="Mine", visibility="private")
    assert private["visibility"] == "private"
    assert private["description"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": None},
        {"title": "ok", "description": "x" * 2001},
        {"title": "ok", "visibility": "public"},
        {"title": "ok", "owner_id": str(uuid.uuid4())},
        {"title": 5},
    ],
)
async def test_a_bad_album_is_refused(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    owner = await flows.register(client)
    response = await client.post(ALBUMS, json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"]["errors"]


async def test_albums_need_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    album_images = f"{ALBUMS}/{album['id']}/images"
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", ALBUMS, {"title": "x"}),
        ("GET", ALBUMS, None),
        ("PATCH", f"{ALBUMS}/{album['id']}", {"title": "x"}),
        ("DELETE", f"{ALBUMS}/{album['id']}", None),
        ("PUT", album_images, {"image_ids": []}),
        ("POST", album_images, {"image_ids": []}),
        ("DELETE", f"{album_images}/{uuid.uuid4()}", None),
    ]
    for method, path, body in requests:
        response = await client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        assert code(response) == "UNAUTHORIZED"
        assert response.headers["www-authenticate"] == "Bearer"


class TestPublicBaseUrl:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"public_base_url": "https://img.example.com/"}

    async def test_links_use_it(self, client: httpx.AsyncClient) -> None:
        owner = await flows.register(client)
        album = await create(client, owner)
        assert album["url"] == f"https://img.example.com/api/v1/albums/{album['id']}"
        assert album["page_url"] == f"https://img.example.com/a/{album['id']}"


async def test_listing_pages_through_the_callers_albums_newest_first(
    client: httpx.AsyncClient,
) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    made = [(await create(client, owner, title=f"Album {n}"))["id"] for n in range(5)]
    theirs = await create(client, other, title="Theirs")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(ALBUMS, params=params, headers=owner.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [album["id"] for album in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == made[::-1]
    others = (await client.get(ALBUMS, headers=other.headers)).json()
    assert [album["id"] for album in others["items"]] == [theirs["id"]]
    assert others["next_cursor"] is None
    default = (await client.get(ALBUMS, headers=owner.headers)).json()
    assert len(default["items"]) == 5
    assert default["items"][0]["title"] == "Album 4"


async def test_listing_refuses_bad_cursors_and_limits(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    await create(client, owner)
    image_cursor = await _an_images_cursor(client, owner, album["id"])
    for cursor in ("garbage", "Zm9vfGJhcg", "YXwyMDI2LTExLTIyVDA5OjAwOjAwfHg", image_cursor):
        bad = await client.get(ALBUMS, params={"cursor": cursor}, headers=owner.headers)
        assert bad.status_code == 400, cursor
        assert code(bad) == "INVALID_REQUEST"
    for limit in (0, 101, "many"):
        out = await client.get(ALBUMS, params={"limit": limit}, headers=owner.headers)
        assert out.status_code == 422
        assert code(out) == "VALIDATION_ERROR"


async def _an_images_cursor(client: httpx.AsyncClient, owner: Any, album_id: str) -> str:
    ids = await upload_many(client, owner, 2)
    assert (await put_images(client, owner, album_id, ids)).status_code == 200
    page = await client.get(f"{ALBUMS}/{album_id}", params={"limit": 1}, headers=owner.headers)
    cursor: str = page.json()["next_cursor"]
    assert cursor
    return cursor


async def test_a_private_album_is_its_owners_alone(client: httpx.AsyncClient) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    album = await create(client, owner, visibility="private")
    [image] = await upload_many(client, owner, 1)
    assert (await put_images(client, owner, album["id"], [image])).status_code == 200
    [their_image] = await upload_many(client, other, 1)
    path = f"{ALBUMS}/{album['id']}"

    assert (await client.get(path, headers=owner.headers)).status_code == 200
    for headers in (other.headers, {}):
        for method, url in (("GET", path), ("GET", f"{path}/download")):
            response = await client.request(method, url, headers=headers)
            assert response.status_code == 404, (method, url)
            assert code(response) == "ALBUM_NOT_FOUND"
    # Writes by another user do not reveal it either.
    for method, url, body in [
        ("PATCH", path, {"title": "mine now"}),
        ("DELETE", path, None),
        ("PUT", f"{path}/images", {"image_ids": [their_image]}),
        ("POST", f"{path}/images", {"image_ids": [their_image]}),
        ("DELETE", f"{path}/images/{image}", None),
    ]:
        response = await client.request(method, url, json=body, headers=other.headers)
        assert response.status_code == 404, (method, url)
        assert code(response) == "ALBUM_NOT_FOUND"
    unchanged = (await client.get(path, headers=owner.headers)).json()
    assert unchanged["title"] == "Holiday"
    assert [i["id"] for i in unchanged["images"]] == [image]


async def test_an_unlisted_album_is_read_by_anyone_and_changed_by_its_owner(
    client: httpx.AsyncClient,
) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    album = await create(client, owner)
    [image] = await upload_many(client, owner, 1)
    assert (await put_images(client, owner, album["id"], [image])).status_code == 200
    [their_image] = await upload_many(client, other, 1)
    path = f"{ALBUMS}/{album['id']}"

    for headers in (other.headers, {}):
        read = await client.get(path, headers=headers)
        assert read.status_code == 200
        assert [i["id"] for i in read.json()["images"]] == [image]
        assert read.json()["images"][0]["album_ids"] == []  # the owner's alone
    for method, url, body in [
        ("PATCH", path, {"title": "mine now"}),
        ("DELETE", path, None),
        ("PUT", f"{path}/images", {"image_ids": [their_image]}),
        ("POST", f"{path}/images", {"image_ids": [their_image]}),
        ("DELETE", f"{path}/images/{image}", None),
    ]:
        response = await client.request(method, url, json=body, headers=other.headers)
        assert response.status_code == 403, (method, url)
        assert code(response) == "FORBIDDEN"
    unchanged = (await client.get(path, headers=owner.headers)).json()
    assert unchanged["title"] == "Holiday"
    assert [i["id"] for i in unchanged["images"]] == [image]
    assert unchanged["images"][0]["album_ids"] == [album["id"]]
    # Nobody else's listing shows it.
    assert (await client.get(ALBUMS, headers=other.headers)).json()["items"] == []


async def test_an_unknown_or_malformed_album_id(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    [image] = await upload_many(client, owner, 1)
    unknown = f"{ALBUMS}/{uuid.uuid4()}"
    for method, url, body in [
        ("GET", unknown, None),
        ("GET", f"{unknown}/download", None),
        ("PATCH", unknown, {"title": "x"}),
        ("DELETE", unknown, None),
        ("PUT", f"{unknown}/images", {"image_ids": [image]}),
        ("POST", f"{unknown}/images", {"image_ids": [image]}),
        ("DELETE", f"{unknown}/images/{image}", None),
    ]:
        response = await client.request(method, url, json=body, headers=owner.headers)
        assert response.status_code == 404, (method, url)
        assert code(response) == "ALBUM_NOT_FOUND"
    for url in (f"{ALBUMS}/not-an-id", f"{ALBUMS}/not-an-id/download", f"{ALBUMS}/1234"):
        response = await client.get(url, headers=owner.headers)
        assert response.status_code == 422, url
        assert code(response) == "VALIDATION_ERROR"
    bad_member = await client.delete(f"{ALBUMS}/{uuid.uuid4()}/images/nope", headers=owner.headers)
    assert bad_member.status_code == 422


async def test_patch_changes_what_it_names_and_moves_updated_at(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    album = await create(client, owner, description="first")
    path = f"{ALBUMS}/{album['id']}"
    await anyio.sleep(0.01)  # timestamps must be able to differ

    renamed = await client.patch(path, json={"title": "Renamed"}, headers=owner.headers)
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert body["title"] == "Renamed"
    assert body["description"] == "first"  # absent: unchanged
    assert body["visibility"] == "unlisted"
    assert body["created_at"] == album["created_at"]
    assert _when(body["updated_at"]) > _when(album["updated_at"])

    nothing = await client.patch(path, json={}, headers=owner.headers)
    assert nothing.status_code == 200
    assert nothing.json() == body  # nothing changed, updated_at included
    cleared = await client.patch(
        path, json={"description": None, "visibility": "private"}, headers=owner.headers
    )
    assert cleared.status_code == 200
    assert cleared.json()["description"] is None
    assert cleared.json()["visibility"] == "private"
    assert (await client.get(path)).status_code == 404  # now private

    for bad in (
        {"title": None},
        {"title": ""},
        {"visibility": None},
        {"visibility": "public"},
        {"description": "x" * 2001},
        {"cover_image_id": "nope"},
        {"owner_id": str(uuid.uuid4())},
    ):
        response = await client.patch(path, json=bad, headers=owner.headers)
        assert response.status_code == 422, bad
        assert code(response) == "VALIDATION_ERROR"
    assert (await client.get(path, headers=owner.headers)).json()["title"] == "Renamed"


async def test_the_cover_must_be_an_image_of_the_album(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    path = f"{ALBUMS}/{album['id']}"
    inside, outside = await upload_many(client, owner, 2)
    assert (await put_images(client, owner, album["id"], [inside])).status_code == 200

    for cover in (outside, str(uuid.uuid4())):
        refused = await client.patch(path, json={"cover_image_id": cover}, headers=owner.headers)
        assert refused.status_code == 422
        assert code(refused) == "VALIDATION_ERROR"
        assert refused.json()["error"]["details"]["errors"][0]["loc"] == ["body", "cover_image_id"]

    chosen = await client.patch(path, json={"cover_image_id": inside}, headers=owner.headers)
    assert chosen.status_code == 200
    assert chosen.json()["cover_image_id"] == inside
    assert (await client.get(path)).json()["cover_image_id"] == inside
    cleared = await client.patch(path, json={"cover_image_id": None}, headers=owner.headers)
    assert cleared.json()["cover_image_id"] is None


async def test_deleting_an_album_keeps_its_images(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    kept = await upload_many(client, owner, 2)
    assert (await put_images(client, owner, album["id"], kept)).status_code == 200
    before = await client.get(f"/api/v1/images/{kept[0]}", headers=owner.headers)
    assert before.json()["album_ids"] == [album["id"]]  # now in the metadata cache

    deleted = await client.delete(f"{ALBUMS}/{album['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await client.get(f"{ALBUMS}/{album['id']}", headers=owner.headers)
    assert gone.status_code == 404
    assert code(gone) == "ALBUM_NOT_FOUND"
    for image_id in kept:
        image = await client.get(f"/api/v1/images/{image_id}", headers=owner.headers)
        assert image.status_code == 200
        assert image.json()["album_ids"] == []
    assert (await client.get(ALBUMS, headers=owner.headers)).json()["items"] == []
    again = await client.delete(f"{ALBUMS}/{album['id']}", headers=owner.headers)
    assert again.status_code == 404


async def test_deleting_an_album_with_its_images_deletes_them_as_delete_does(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    members = await upload_many(client, owner, 3)
    outsider = (await upload_many(client, owner, 1))[0]
    assert (await put_images(client, owner, album["id"], members)).status_code == 200
    used = (await client.get("/api/v1/auth/me", headers=owner.headers)).json()["storage_used"]
    outsider_size = (await client.get(f"/api/v1/images/{outsider}")).json()["file_size"]
    for image_id in members:  # cached, and their bytes too
        assert (await client.get(f"/api/v1/images/{image_id}/file")).status_code == 200

    deleted = await client.delete(
        f"{ALBUMS}/{album['id']}", params={"with_images": "true"}, headers=owner.headers
    )
    assert deleted.status_code == 204
    for image_id in members:
        for suffix in ("", "/file", "/thumbnail"):
            response = await client.get(f"/api/v1/images/{image_id}{suffix}")
            assert response.status_code == 404, suffix
            assert code(response) == "IMAGE_NOT_FOUND"
    assert (await client.get(f"/api/v1/images/{outsider}")).status_code == 200
    me = (await client.get("/api/v1/auth/me", headers=owner.headers)).json()
    assert me["image_count"] == 1
    assert me["storage_used"] == outsider_size < used
    assert (await client.get(f"{ALBUMS}/{album['id']}", headers=owner.headers)).status_code == 404
    listed = (await client.get("/api/v1/images", headers=owner.headers)).json()["items"]
    assert [image["id"] for image in listed] == [outsider]


async def test_others_see_only_the_images_they_may_see(client: httpx.AsyncClient) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    album = await create(client, owner)
    path = f"{ALBUMS}/{album['id']}"
    first, third = await upload_many(client, owner, 2)
    [hidden] = await upload_many(client, owner, 1, fields={"visibility": "private"})
    assert (await put_images(client, owner, album["id"], [first, hidden, third])).status_code == 200
    covered = await client.patch(path, json={"cover_image_id": hidden}, headers=owner.headers)
    assert covered.json()["cover_image_id"] == hidden

    as_owner = (await client.get(path, headers=owner.headers)).json()
    assert as_owner["image_count"] == 3
    assert as_owner["cover_image_id"] == hidden
    assert [image["id"] for image in as_owner["images"]] == [first, hidden, third]
    listed = (await client.get(ALBUMS, headers=owner.headers)).json()["items"][0]
    assert (listed["image_count"], listed["cover_image_id"]) == (3, hidden)
    for headers in (other.headers, {}):
        seen = (await client.get(path, headers=headers)).json()
        assert seen["image_count"] == 2
        assert seen["cover_image_id"] is None
        assert [image["id"] for image in seen["images"]] == [first, third]
        assert await album_image_ids(client, album["id"], limit=1) == [first, third]

    shown = await client.patch(path, json={"cover_image_id": third}, headers=owner.headers)
    assert shown.status_code == 200
    assert (await client.get(path, headers=other.headers)).json()["cover_image_id"] == third


async def test_expired_images_leave_the_album_for_everyone(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await create(client, owner)
    [kept] = await upload_many(client, owner, 1)
    expiring = await flows.upload_ok(client, account=owner, fields={"expires_in": "1"})
    assert (await put_images(client, owner, album["id"], [expiring["id"], kept])).status_code == 200
    path = f"{ALBUMS}/{album['id']}"
    assert (
        await client.patch(path, json={"cover_image_id": expiring["id"]}, headers=owner.headers)
    ).status_code == 200
    assert (await client.get(path, headers=owner.headers)).json()["image_count"] == 2

    moment = _when(expiring["expires_at"])
    await anyio.sleep(max(0.0, (moment - datetime.now(moment.tzinfo)).total_seconds()) + 0.05)
    for headers in (owner.headers, {}):
        seen = (await client.get(path, headers=headers)).json()
        assert seen["image_count"] == 1
        assert seen["cover_image_id"] is None
        assert [image["id"] for image in seen["images"]] == [kept]


async def test_an_albums_images_come_a_page_at_a_time_in_album_order(
    client: httpx.AsyncClient,
) -> None:
    owner, other = await flows.register(client), await flows.register(client)
    album = await create(client, owner)
    shown = await upload_many(client, owner, 5)
    hidden = await upload_many(client, owner, 2, fields={"visibility": "private"})
    order = [shown[3], hidden[0], shown[0], shown[4], hidden[1], shown[2], shown[1]]
    assert (await put_images(client, owner, album["id"], order)).status_code == 200

    path = f"{ALBUMS}/{album['id']}"
    first = (await client.get(path, params={"limit": 3}, headers=owner.headers)).json()
    assert [image["id"] for image in first["images"]] == order[:3]
    assert first["image_count"] == 7
    second = await client.get(
        path, params={"limit": 3, "cursor": first["next_cursor"]}, headers=owner.headers
    )
    assert second.status_code == 200
    assert [image["id"] for image in second.json()["images"]] == order[3:6]
    assert second.json()["image_count"] == 7  # the album, whichever page
    assert await album_image_ids(client, album["id"], owner, limit=3) == order
    visible = [image for image in order if image not in hidden]
    assert await album_image_ids(client, album["id"], other, limit=2) == visible
    page = (await client.get(path, params={"limit": 2}, headers=other.headers)).json()
    assert len(page["images"]) == 2  # the hidden ones never make a page short
    images = first["images"][0]
    assert images["url"] == f"http://testserver/api/v1/images/{order[0]}/file"
    assert images["album_ids"] == [album["id"]]

    albums_cursor = (await client.get(ALBUMS, params={"limit": 1}, headers=owner.headers)).json()[
        "next_cursor"
    ]
    for cursor in ("garbage", "aXwtMQ", "aXw5OTk5OTk5OTk5OTk5OTk5OTk", albums_cursor or "aXx4"):
        bad = await client.get(path, params={"cursor": cursor}, headers=owner.headers)
        assert bad.status_code == 400, cursor
        assert code(bad) == "INVALID_REQUEST"
    for limit in (0, 101):
        response = await client.get(path, params={"limit": limit}, headers=owner.headers)
        assert response.status_code == 422


async def test_album_routes_are_documented_with_their_errors(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        "/api/v1/albums": {"get": {"400", "401"}, "post": {"401", "422"}},
        "/api/v1/albums/{album_id}": {
            "get": {"404", "422"},
            "patch": {"401", "403", "404", "422"},
            "delete": {"401", "403", "404", "422"},
        },
        "/api/v1/albums/{album_id}/images": {
            "put": {"401", "403", "404", "422"},
            "post": {"401", "403", "404", "422"},
        },
        "/api/v1/albums/{album_id}/images/{image_id}": {"delete": {"401", "403", "404", "422"}},
        "/api/v1/albums/{album_id}/download": {"get": {"200", "404", "422"}},
    }
    for path, methods in expected.items():
        for method, statuses in methods.items():
            operation = paths[path][method]
            assert operation["tags"] == ["albums"], (method, path)
            assert statuses | {"401", "429", "500", "503"} <= set(operation["responses"]), (
                method,
                path,
            )
            assert operation["description"] or operation["summary"]
    download = paths["/api/v1/albums/{album_id}/download"]["get"]
    assert "application/zip" in download["responses"]["200"]["content"]
    assert {} in paths["/api/v1/albums/{album_id}"]["get"]["security"]  # optional auth
    assert (
        "ALBUM_NOT_FOUND"
        in paths["/api/v1/albums/{album_id}"]["get"]["responses"]["404"]["description"]
    )


async def test_album_requests_count_against_the_read_limit(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    created = await client.post(ALBUMS, json={"title": "x"}, headers=owner.headers)
    listed = await client.get(ALBUMS, headers=owner.headers)
    assert created.headers["ratelimit-limit"] == listed.headers["ratelimit-limit"] == "1200"
    assert int(listed.headers["ratelimit-remaining"]) < int(created.headers["ratelimit-remaining"])
