"""The storage interface every backend implements, and its errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from app.errors import ServiceUnavailable


class StorageError(Exception):
    """A storage operation failed for a reason other than a missing object."""


class StorageUnavailable(ServiceUnavailable):
    """The storage backend could not be reached; rendered as 503."""

    message = "Storage is unavailable; try again shortly"


class ObjectNotFound(StorageError):
    """The key names no object."""


class InvalidKey(StorageError, ValueError):
    """The key breaks the key grammar; always a bug, since Chitram makes every key."""


_KEY = re.compile(r"[a-z0-9][a-z0-9._/-]*")


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative path of `[a-z0-9._/-]` segments, else raise."""
    segments = key.split("/")
    if not _KEY.fullmatch(key) or ".." in key or any(s in ("", ".") for s in segments):
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # timezone-aware UTC


class Storage(Protocol):
    """Objects addressed by keys that Chitram generates; values are immutable bytes.

    Keys are `/`-separated, `[a-z0-9/._-]` only, and never come from user input.
    Every method raises `StorageUnavailable` when the backend cannot be reached.
    """

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at `path` under `key` atomically (readers never see a partial
        object). The caller keeps ownership of `path`; a backend may move it away (the
        local backend renames it when it can), so the caller must not rely on it existing
        afterwards. Overwriting an existing key is allowed."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` atomically."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The whole object; raises `ObjectNotFound`. Meant for small objects."""
        ...

    def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        """Bytes `start..end` inclusive (`end=None`: to the last byte), in chunks, without
        holding the whole object in memory; raises `ObjectNotFound` on first iteration."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and modification time, or None when there is no such object."""
        ...

    async def local_path(self, key: str) -> Path | None:
        """The object's file, when this backend keeps objects as files on this machine
        (raises `ObjectNotFound` when it has none); None for remote backends. Lets a
        worker process read a large object itself instead of receiving it through a pipe."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error (idempotent)."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in no particular order."""
        ...

    async def ping(self) -> None:
        """Cheap reachability check for /health; raises `StorageUnavailable`."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
