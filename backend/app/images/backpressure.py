"""Upload back-pressure: per-process caps on uploads at once, on uploads at once per client
address, and on body bytes in flight; and a floor on how slowly a body may arrive.

A slot is taken before a byte of the body is read and never waits: a saturated server
answers 503 at once with `Retry-After` and closes the connection, so a client retries
later instead of piling more bodies into a queue it cannot see. Bytes are reserved as
they arrive, not from what the request declares, so a body that trickles in holds only
what it has actually sent; a chunk that would take the process over its byte budget is
refused the same way (503). A body slower than the minimum rate, averaged from its
first byte once a grace period has passed, is answered 408 (see ADR 0016).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import anyio

from app.errors import RateLimited, RequestTimeout, ServiceUnavailable

RETRY_AFTER = 1


class ServerBusy(ServiceUnavailable):
    message = "The server is busy with other uploads; retry shortly"

    def __init__(self) -> None:
        super().__init__(retry_after=RETRY_AFTER)
        # The body is not read: closing is what stops the client from sending it.
        self.headers["Connection"] = "close"


class TooManyUploads(RateLimited):
    """One client address already has its share of the upload slots."""

    message = "Too many uploads in progress from this address; finish one first"

    def __init__(self, max_uploads: int) -> None:
        super().__init__(
            details={"max_uploads_per_client": max_uploads},
            headers={"Retry-After": str(RETRY_AFTER), "Connection": "close"},
        )


class BodyTooSlow(RequestTimeout):
    message = "The request body arrived too slowly"

    def __init__(self, received: int, seconds: float, min_rate: int) -> None:
        super().__init__(
            details={
                "received_bytes": received,
                "seconds": round(seconds, 1),
                "min_bytes_per_second": min_rate,
            }
        )


class Admission:
    """One admitted upload: its slot, and the bytes it has brought in so far."""

    def __init__(self, gate: UploadGate) -> None:
        self._gate = gate
        self.bytes = 0

    def take(self, size: int) -> None:
        """Reserve `size` more bytes of the gate's budget, or raise `ServerBusy`."""
        gate = self._gate
        if gate.bytes + size > gate.max_bytes:
            raise ServerBusy()
        gate.bytes += size
        self.bytes += size


class UploadGate:
    """Counts uploads (in all and per client address) and their bytes in this process."""

    def __init__(self, max_uploads: int, max_bytes: int, max_per_client: int) -> None:
        self.max_uploads = max_uploads
        self.max_bytes = max_bytes
        self.max_per_client = max_per_client
        self.uploads = 0
        self.bytes = 0
        self.per_client: dict[str, int] = {}

    @contextmanager
    def admit(self, client: str, declared_bytes: int | None = None) -> Iterator[Admission]:
        """Hold a slot for the block, or raise `TooManyUploads` / `ServerBusy`.

        A declared length that cannot fit the bytes free right now is refused at once:
        reading it would only end in a 503 halfway. Nothing is reserved for it, though:
        bytes are taken through the `Admission` as they arrive."""
        held = self.per_client.get(client, 0)
        if held >= self.max_per_client:
            raise TooManyUploads(self.max_per_client)
        if self.uploads >= self.max_uploads or (
            declared_bytes is not None and self.bytes + declared_bytes > self.max_bytes
        ):
            raise ServerBusy()
        self.uploads += 1
        self.per_client[client] = held + 1
        admission = Admission(self)
        try:
            yield admission
        finally:
            self.uploads -= 1
            self.bytes -= admission.bytes
            remaining = self.per_client[client] - 1
            if remaining:
                self.per_client[client] = remaining
            else:
                del self.per_client[client]


async def metered(
    body: AsyncIterator[bytes],
    admission: Admission,
    *,
    grace_seconds: float,
    min_bytes_per_second: int,
) -> AsyncIterator[bytes]:
    """`body`, with each chunk reserved in `admission` as it arrives, and a deadline.

    After `grace_seconds`, the body must have averaged `min_bytes_per_second` since it
    started: the next chunk is awaited only until the moment the bytes so far would fall
    under that rate, and a body that misses it raises `BodyTooSlow` (0 disables it)."""
    started = anyio.current_time()
    received = 0
    chunks = aiter(body)
    while True:
        timeout = math.inf
        if min_bytes_per_second > 0:
            deadline = started + max(grace_seconds, received / min_bytes_per_second)
            timeout = deadline - anyio.current_time()
        chunk: bytes | None = None
        # The scope covers the wait only, never the `yield` (the consumer's code).
        with anyio.move_on_after(timeout):
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
        if chunk is None:
            raise BodyTooSlow(received, anyio.current_time() - started, min_bytes_per_second)
        received += len(chunk)
        admission.take(len(chunk))
        yield chunk
