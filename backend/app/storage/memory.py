"""A dict-backed storage with the same semantics as the real backends, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
from anyio.lowlevel import checkpoint

from app.storage.base import ObjectInfo, ObjectNotFound, check_key


class MemoryStorage:
    """Objects held in a dict; every value is an immutable `bytes`, so puts are atomic."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, datetime]] = {}

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        check_key(key)
        data = await anyio.Path(path).read_bytes()
        await self.put_bytes(key, data, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._objects[check_key(key)] = (bytes(data), datetime.now(UTC))

    async def get_bytes(self, key: str) -> bytes:
        return self._get(key)[0]

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        data = self._get(key)[0]
        stop = len(data) if end is None else min(end + 1, len(data))
        for offset in range(start, stop, chunk_size):
            yield data[offset : min(offset + chunk_size, stop)]
            await checkpoint()

    async def local_path(self, key: str) -> Path | None:
        return None

    async def stat(self, key: str) -> ObjectInfo | None:
        found = self._objects.get(check_key(key))
        if found is None:
            return None
        return ObjectInfo(key=key, size=len(found[0]), last_modified=found[1])

    async def delete(self, key: str) -> None:
        self._objects.pop(check_key(key), None)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for key, (data, modified) in list(self._objects.items()):
            if key.startswith(prefix):
                yield ObjectInfo(key=key, size=len(data), last_modified=modified)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _get(self, key: str) -> tuple[bytes, datetime]:
        try:
            return self._objects[check_key(key)]
        except KeyError:
            raise ObjectNotFound(key) from None
