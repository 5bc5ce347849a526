"""Password hashing with argon2id (pwdlib), off the event loop and bounded in memory."""

from __future__ import annotations

import anyio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# Each argon2id hash holds 64 MiB (the library's RFC 9106 defaults) for ~50 ms: at most
# this many at once, so a burst of logins queues instead of exhausting memory.
MAX_CONCURRENT_HASHES = 4
# One per process: its cost is the same for every app. A process-wide cache: ADR 0018.
_DECOY: dict[str, str] = {}


class Passwords:
    """Hash and verify passwords in worker threads, a few at a time."""

    def __init__(self) -> None:
        self._hasher = PasswordHash((Argon2Hasher(),))
        self._slots = anyio.CapacityLimiter(MAX_CONCURRENT_HASHES)
        # Verified against when the email is unknown, so both failures cost the same.
        # Made in a thread once per process (`warm`, at start-up), never on the loop.
        self._decoy: str | None = _DECOY.get("hash")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._slots)

    async def warm(self) -> None:
        """Make the decoy hash, so the first unknown email costs no more than the rest."""
        if self._decoy is None:
            self._decoy = _DECOY.setdefault("hash", await self.hash("chitram-decoy-password"))

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether `password` matches; with no hash, the same work and False."""
        if password_hash is None:
            await self.warm()
        stored = password_hash or self._decoy
        assert stored is not None
        matches = await anyio.to_thread.run_sync(
            self._hasher.verify, password, stored, limiter=self._slots
        )
        return matches and password_hash is not None
