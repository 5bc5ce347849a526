"""What a client does with its library over HTTP: label images, search them, page through."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Connection, update

from app.config import Settings
from app.infra.db import Database, RunAsync
from app.models import Image
from tests.support.accounts import Account
from tests.support.flows import upload_ok

IMAGES = "/api/v1/images"
TAGS = "/api/v1/tags"


async def new_image(
    client: httpx.AsyncClient, account: Account, filename: str = "a.png", **changes: Any
) -> dict[str, Any]:
    """An uploaded image of `account`, PATCHed with `changes` when given; its body."""
    body = await upload_ok(client, account=account, filename=filename)
    if changes:
        body = await patch_ok(client, account, body["id"], **changes)
    return body


async def patch(
    client: httpx.AsyncClient, account: Account | None, image_id: str, **changes: Any
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.patch(f"{IMAGES}/{image_id}", json=changes, headers=headers)


async def patch_ok(
    client: httpx.AsyncClient, account: Account, image_id: str, **changes: Any
) -> dict[str, Any]:
    response = await patch(client, account, image_id, **changes)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def search(
    client: httpx.AsyncClient, account: Account | None, **params: Any
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.get(IMAGES, params=params, headers=headers)


async def found(client: httpx.AsyncClient, account: Account, **params: Any) -> list[str]:
    """The ids of every image `GET /images` answers with `params`, through every page."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = await search(client, account, **page_params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


async def tags_of(client: httpx.AsyncClient, account: Account, **params: Any) -> list[list[Any]]:
    response = await client.get(TAGS, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return [[item["name"], item["count"]] for item in response.json()["items"]]


@asynccontextmanager
async def database_of(settings: Settings) -> AsyncIterator[Database]:
    """The test's database, for what no route does: ties in time, expiry in the past,
    the tagger's tags."""
    database = Database(settings.resolved_database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def write(settings: Settings, work: Callable[[Connection], object]) -> None:
    def unit(connection: Connection, _run_async: RunAsync) -> None:
        work(connection)

    async with database_of(settings) as database:
        await database.write(unit)


async def set_columns(settings: Settings, image_ids: list[str], **values: Any) -> None:
    """Set columns of these images directly (e.g. the same `created_at` for ties)."""
    ids = [uuid.UUID(image_id) for image_id in image_ids]
    await write(
        settings, lambda c: c.execute(update(Image).where(Image.id.in_(ids)).values(**values))
    )


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)
