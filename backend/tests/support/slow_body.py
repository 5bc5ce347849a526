"""A client that sends an upload body a byte at a time over a raw socket (slowloris on the
body), for the slow-body test and the `bench.slow_body` drill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

BOUNDARY = "chitram-slow-body"


@dataclass
class TrickleResult:
    status: int | None  # None: no answer before the connection ended or `give_up_after` passed
    error: dict[str, Any] | None
    closes: bool  # the answer said `Connection: close`
    seconds: float  # from the first byte sent to the answer
    bytes_sent: int


async def trickle_upload(
    base_url: str,
    *,
    forwarded_for: str | None = None,
    path: str = "/api/v1/images/upload",
    field: str = "file",
    interval: float = 1.0,
    give_up_after: float = 60.0,
    connected: asyncio.Event | None = None,
) -> TrickleResult:
    """POST a chunked multipart body that never ends: its part headers, then one byte every
    `interval` seconds, until the server answers; the answer's status and error body."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    forwarded = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Transfer-Encoding: chunked\r\n{forwarded}\r\n"
    ).encode()
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="slow.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    started = time.monotonic()
    sent = len(part)
    writer.write(head + _chunk(part))
    await writer.drain()
    if connected is not None:
        connected.set()

    async def drip() -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                await asyncio.sleep(interval)
                writer.write(_chunk(b"\xff"))
                await writer.drain()
                sent += 1

    dripping = asyncio.create_task(drip())
    try:
        status, error, closes = await asyncio.wait_for(_read_response(reader), give_up_after)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
        status, error, closes = None, None, False
    finally:
        dripping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dripping
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return TrickleResult(status, error, closes, time.monotonic() - started, sent)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, Any] | None, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        error = None
    return status, error, headers.get("connection", "").lower() == "close"
