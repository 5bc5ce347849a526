"""What a client does with albums over HTTP, shared by the album tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import flows, images
from tests.support.accounts import Account

ALBUMS = "/api/v1/albums"


def code(response: httpx.Response) -> str:
    """The error code of an error response."""
    return str(response.json()["error"]["code"])


async def create(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    """A new album of `account` (title "Holiday" unless given); its body."""
    response = await client.post(
        ALBUMS, json={"title": "Holiday", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def upload_many(
    client: httpx.AsyncClient,
    account: Account,
    count: int,
    *,
    fields: dict[str, str] | None = None,
    filename: str = "a.png",
) -> list[str]:
    """`count` distinct small PNGs of `account`; their ids, oldest first."""
    ids = []
    for number in range(count):
        body = await flows.upload_ok(
            client,
            images.png(8 + number, 8),
            account=account,
            filename=filename,
            fields=fields,
        )
        ids.append(str(body["id"]))
    return ids


async def put_images(
    client: httpx.AsyncClient, account: Account, album_id: str, image_ids: list[str]
) -> httpx.Response:
    return await client.put(
        f"{ALBUMS}/{album_id}/images", json={"image_ids": image_ids}, headers=account.headers
    )


async def album_image_ids(
    client: httpx.AsyncClient, album_id: str, account: Account | None = None, limit: int = 100
) -> list[str]:
    """Every image id of the album as `account` (or anyone) sees it, page by page."""
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            f"{ALBUMS}/{album_id}", params=params, headers=account.headers if account else {}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [image["id"] for image in body["images"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
