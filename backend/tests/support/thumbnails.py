"""Waiting for thumbnails, over HTTP like a client would."""

from __future__ import annotations

from typing import Any

import anyio
import httpx


async def wait_for_thumbnails(
    client: httpx.AsyncClient, image_id: str, *, seconds: float = 30.0
) -> dict[str, Any]:
    """Poll the image's metadata until its thumbnail status is no longer pending."""
    with anyio.fail_after(seconds):
        while True:
            response = await client.get(f"/api/v1/images/{image_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["thumbnail_status"] != "pending":
                return body
            await anyio.sleep(0.05)
