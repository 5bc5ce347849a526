"""Upload back-pressure: a per-process cap on concurrent uploads and on bytes in flight.

Admission happens before a byte of the body is read, from the declared Content-Length
(or the largest body the request may carry when it declares none), and never waits: a
saturated server answers 503 at once with `Retry-After` and closes the connection, so
a client retries later instead of piling more bodies into a queue it cannot see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ServiceUnavailable

RETRY_AFTER = 1


class ServerBusy(ServiceUnavailable):
    message = "The server is busy with other uploads; retry shortly"

    def __init__(self) -> None:
        super().__init__(retry_after=RETRY_AFTER)
        # The body is not read: closing is what stops the client from sending it.
        self.headers["Connection"] = "close"


class UploadGate:
    """Counts uploads and their expected bytes in this process."""

    def __init__(self, max_uploads: int, max_bytes: int) -> None:
        self.max_uploads = max_uploads
        self.max_bytes = max_bytes
        self.uploads = 0
        self.bytes = 0

    @contextmanager
    def admit(self, expected_bytes: int) -> Iterator[None]:
        """Hold a slot and `expected_bytes` for the block, or raise `ServerBusy`."""
        if self.uploads >= self.max_uploads or self.bytes + expected_bytes > self.max_bytes:
            raise ServerBusy()
        self.uploads += 1
        self.bytes += expected_bytes
        try:
            yield
        finally:
            self.uploads -= 1
            self.bytes -= expected_bytes
