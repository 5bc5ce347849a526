"""Waiting for tag jobs over HTTP, and reaching into the database as an older release would."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings


async def wait_for_tags(
    client: httpx.AsyncClient,
    image_id: str,
    *,
    headers: dict[str, str] | None = None,
    seconds: float = 30.0,
) -> dict[str, Any]:
    """Poll the image's metadata until its tags are no longer pending."""
    with anyio.fail_after(seconds):
        while True:
            response = await client.get(f"/api/v1/images/{image_id}", headers=headers)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["tags_status"] != "pending":
                return body
            await anyio.sleep(0.05)


async def execute(settings: Settings, statement: str, **params: Any) -> None:
    """One SQL statement on the app's database, committed."""
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement), params)
    finally:
        await engine.dispose()


async def forget_tags(settings: Settings, image_id: str) -> None:
    """Make the image look as it did before automatic tags existed (migration 0006)."""
    await execute(
        settings,
        "UPDATE images SET tags_status = 'pending', tags_attempts = 0, "
        "tags_updated_at = NULL, tags_json = '{}' WHERE id = :id",
        id=_db_id(settings, image_id),
    )
    await execute(
        settings, "DELETE FROM image_tags WHERE image_id = :id", id=_db_id(settings, image_id)
    )


def _db_id(settings: Settings, image_id: str) -> str:
    # SQLAlchemy's Uuid stores 32 hex digits on SQLite, a native uuid on PostgreSQL.
    return (
        image_id
        if settings.resolved_database_url.startswith("postgresql")
        else image_id.replace("-", "")
    )
