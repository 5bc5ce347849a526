"""Slow bodies on real sockets: bodies trickling a byte at a time,
with no declared length, neither keep other uploads out nor hold their slots for long."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support import images
from tests.support.server import live_server
from tests.support.slow_body import trickle_upload

pytestmark = pytest.mark.anyio

MAX_UPLOAD_BYTES = 1024 * 1024
TRICKLERS = 7


async def test_trickling_bodies_get_408_and_other_uploads_are_served(tmp_path: Path) -> None:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        # Exactly what seven bodies of unknown length used to reserve between them.
        "MAX_INGEST_BYTES": str(TRICKLERS * (MAX_UPLOAD_BYTES + 64 * 1024)),
        "UPLOAD_GRACE_SECONDS": "5",
        "UPLOAD_MIN_BYTES_PER_SECOND": "1000",
    }
    photo = images.noisy_jpeg(200, 150)
    with live_server(env, tmp_path) as server:
        connected = [asyncio.Event() for _ in range(TRICKLERS)]
        tricklers = [
            asyncio.create_task(
                trickle_upload(
                    server.url,
                    forwarded_for=f"203.0.113.{n + 1}",  # seven clients behind the proxy
                    interval=0.5,
                    connected=connected[n],
                )
            )
            for n in range(TRICKLERS)
        ]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in connected)), 30)
        await asyncio.sleep(0.5)  # let the server take them in
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for n in range(3):
                ok = await client.post("/api/v1/images/upload", files={"file": (f"{n}.jpg", photo)})
                assert ok.status_code == 201, ok.text
        results = await asyncio.wait_for(asyncio.gather(*tricklers), 60)
    for result in results:
        assert result.status == 408, result
        assert result.error is not None
        assert result.error["code"] == "REQUEST_TIMEOUT"
        assert result.closes
