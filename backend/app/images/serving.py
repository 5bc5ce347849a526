"""HTTP responses for stored bytes: validators, ranges, and the contract's safety headers."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from app.errors import RangeNotSatisfiable
from app.images.errors import ImageNotFound
from app.images.filenames import content_disposition
from app.storage import Storage
from app.storage.base import ObjectNotFound

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CACHE_FOREVER = "public, max-age=31536000, immutable"
# Private images (contract section 10): never in a shared cache, never kept by the browser.
CACHE_PRIVATE = "private, no-store"


@dataclass(frozen=True, slots=True)
class ServedObject:
    """What a response needs to know about the bytes it serves."""

    key: str
    sha256: str
    size: int
    content_type: str
    filename: str
    modified_at: datetime
    cache_control: str = CACHE_FOREVER


# A process-wide cache: docs/adr/0018-unit-of-work.md lists them all, and why.
class ObjectCache:
    """A bounded LRU of small objects' bytes. Objects are immutable and content-addressed,
    so an entry can never be stale; deleted images are refused before the cache is asked."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[str, bytes] = {}
        self._bytes = 0

    def get(self, key: str) -> bytes | None:
        data = self._entries.pop(key, None)
        if data is not None:
            self._entries[key] = data  # most recently used goes last
        return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes // 8 or key in self._entries:
            return
        self._entries[key] = data
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._bytes -= len(self._entries.pop(oldest))

    def discard(self, key: str) -> None:
        data = self._entries.pop(key, None)
        if data is not None:
            self._bytes -= len(data)


async def serve(
    obj: ServedObject,
    headers: Headers,
    *,
    head: bool,
    download: bool,
    storage: Storage,
    cache: ObjectCache,
    small_file_bytes: int,
) -> Response:
    """A 200, 206 or 304 for `obj`, streaming large bodies and reading small ones at once."""
    if not head and obj.size <= small_file_bytes and not _conditional(headers):
        return await _whole_small_file(obj, download, storage, cache)
    base = _base_headers(obj, download)
    if _not_modified(obj, headers):
        return Response(status_code=304, headers=base)
    byte_range = _requested_range(obj, headers)
    start, end = byte_range if byte_range else (0, obj.size - 1)
    length = end - start + 1 if obj.size else 0
    base["content-length"] = str(length)
    status = 200
    if byte_range:
        status = 206
        base["content-range"] = f"bytes {start}-{end}/{obj.size}"
    if head:
        return Response(status_code=status, headers=base, media_type=obj.content_type)
    if obj.size <= small_file_bytes:
        data = await _small_body(obj, storage, cache)
        body = data if byte_range is None else data[start : end + 1]  # whole files: no copy
        return Response(body, status_code=status, headers=base, media_type=obj.content_type)
    chunks = await _started_stream(storage.stream(obj.key, start, end))
    return StreamingResponse(chunks, status_code=status, headers=base, media_type=obj.content_type)


async def _whole_small_file(
    obj: ServedObject, download: bool, storage: Storage, cache: ObjectCache
) -> Response:
    """The hot path: a plain GET of a small file, with its headers encoded once per object."""
    response = Response(await _small_body(obj, storage, cache), media_type=obj.content_type)
    response.raw_headers.extend(_encoded_headers_of(obj, download))
    return response


def _conditional(headers: Headers) -> bool:
    return any(name in headers for name in ("range", "if-none-match", "if-modified-since"))


# A process-wide cache: docs/adr/0018-unit-of-work.md lists them all, and why.
@functools.lru_cache(maxsize=4096)
def _encoded_headers_of(obj: ServedObject, download: bool) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in _headers_of(obj, download).items()
    )


def _base_headers(obj: ServedObject, download: bool) -> dict[str, str]:
    return dict(_headers_of(obj, download))


# A process-wide cache: docs/adr/0018-unit-of-work.md lists them all, and why.
@functools.lru_cache(maxsize=4096)
def _headers_of(obj: ServedObject, download: bool) -> dict[str, str]:
    # Pure function of an immutable object: computed once per hot image, copied per response.
    return {
        "etag": f'"{obj.sha256}"',
        "last-modified": format_datetime(obj.modified_at, usegmt=True),
        "cache-control": obj.cache_control,
        "accept-ranges": "bytes",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
        "content-disposition": content_disposition(obj.filename, attachment=download),
    }


def _not_modified(obj: ServedObject, headers: Headers) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or f'"{obj.sha256}"' in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and obj.modified_at.replace(microsecond=0) <= since
    return False


def _requested_range(obj: ServedObject, headers: Headers) -> tuple[int, int] | None:
    """The single satisfiable range asked for, None for the whole file; 416 when outside."""
    header = headers.get("range")
    if header is None:
        return None
    if_range = headers.get("if-range")
    if if_range is not None and if_range.strip() != f'"{obj.sha256}"':
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return None  # malformed or multi-range: RFC 9110 lets us answer with the whole file
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or obj.size == 0:
            raise RangeNotSatisfiable(obj.size)
        return max(obj.size - suffix, 0), obj.size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range-spec is ignored, not refused
    if start >= obj.size:
        raise RangeNotSatisfiable(obj.size)
    end = min(int(last), obj.size - 1) if last else obj.size - 1
    return start, end


async def _small_body(obj: ServedObject, storage: Storage, cache: ObjectCache) -> bytes:
    data = cache.get(obj.key)
    if data is None:
        try:
            data = await storage.get_bytes(obj.key)
        except ObjectNotFound as exc:
            raise ImageNotFound() from exc
        cache.put(obj.key, data)
    return data


async def _started_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Fetch the first chunk before answering, so a missing object is a 404, not a cut."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except ObjectNotFound as exc:
        raise ImageNotFound() from exc

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    return body()
