"""A storage backend that counts its failures and traces its calls, around any other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from app.infra import tracing
from app.infra.metrics import STORAGE_ERRORS
from app.storage.base import InvalidKey, ObjectInfo, ObjectNotFound, Storage

T = TypeVar("T")
EXPECTED = (ObjectNotFound, InvalidKey)  # answers, not failures of the store


class InstrumentedStorage:
    """Delegates every call to `inner`; `chitram_storage_errors_total{operation}` counts
    the ones that failed, and with tracing on each call is a span."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    @asynccontextmanager
    async def _counted(self, operation: str) -> AsyncIterator[None]:
        try:
            yield
        except EXPECTED:
            raise
        except Exception:
            STORAGE_ERRORS.labels(operation=operation).inc()
            raise

    async def _call(self, operation: str, key: str, call: Callable[[], Awaitable[T]]) -> T:
        async with (
            tracing.span(f"storage.{operation}", **{"chitram.storage.key": key}),
            self._counted(operation),
        ):
            return await call()

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await self._call("put", key, lambda: self.inner.put_file(key, path, content_type))

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._call("put", key, lambda: self.inner.put_bytes(key, data, content_type))

    async def get_bytes(self, key: str) -> bytes:
        return await self._call("get", key, lambda: self.inner.get_bytes(key))

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        # Counted, not traced: a span's context cannot stay current across the yields of
        # a generator that the response consumes later.
        async with self._counted("stream"):
            async for chunk in self.inner.stream(key, start, end, chunk_size):
                yield chunk

    async def stat(self, key: str) -> ObjectInfo | None:
        return await self._call("stat", key, lambda: self.inner.stat(key))

    async def local_path(self, key: str) -> Path | None:
        return await self._call("local_path", key, lambda: self.inner.local_path(key))

    async def delete(self, key: str) -> None:
        await self._call("delete", key, lambda: self.inner.delete(key))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        async with self._counted("list"):
            async for info in self.inner.list(prefix):
                yield info

    async def ping(self) -> None:
        await self._call("ping", "", self.inner.ping)

    async def close(self) -> None:
        await self.inner.close()
