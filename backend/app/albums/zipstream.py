"""A zip archive written as it is sent: one entry at a time, never the whole in memory.

The standard library's `zipfile` writes into a sink that cannot seek, so each entry's
sizes and CRC follow its bytes in a data descriptor; entries are stored, not deflated
(images are already compressed). Each chunk read from storage is passed on as soon as
it is written, so memory holds a few chunks (those read ahead), whatever the size of
the album; ZIP64 records appear by themselves when the archive passes 4 GiB."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zipfile
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TypeVar

from app.storage.base import ObjectNotFound

log = logging.getLogger(__name__)
T = TypeVar("T")
# Zip timestamps start in 1980 and carry no time zone: UTC is written as is.
_EARLIEST = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One file of the archive; `open` starts reading its bytes when its turn comes."""

    name: str
    size: int
    modified_at: datetime
    open: Callable[[], AsyncIterator[bytes]]


class _Sink:
    """Where `zipfile` writes: keeps what was written until it is taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))  # no copy for bytes, the usual case
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> list[bytes]:
        """What was written since the last call, as written: a chunk of an image is
        passed on as it came from storage, never copied into a bigger buffer."""
        parts, self._parts = self._parts, []
        return parts


def _info(entry: ZipEntry) -> zipfile.ZipInfo:
    stamp = entry.modified_at.timetuple()[:6]
    info = zipfile.ZipInfo(entry.name, date_time=max(stamp, _EARLIEST))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = entry.size  # decides, up front, whether the entry needs ZIP64
    info.external_attr = 0o644 << 16
    return info


async def zip_stream(
    entries: Iterable[ZipEntry], read_ahead: int = 4, open_ahead: int = 4
) -> AsyncGenerator[bytes]:
    """The archive of `entries`, in order, as chunks. An entry whose object is missing
    (deleted since it was listed) is left out.

    Storage latency (a cold disk, S3) overlaps the sending: up to `read_ahead` chunks
    are read while earlier ones are sent, and the next `open_ahead` objects are opened,
    and their first chunks read, at the same time (most images are a single chunk)."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED)
    member: IO[bytes] | None = None
    # Closed as soon as this generator is (a client that went away), not when collected.
    async with contextlib.aclosing(_prefetched(_chunks(entries, open_ahead), read_ahead)) as items:
        async for entry, chunk in items:
            if entry is not None:  # a new entry starts with this chunk
                if member is not None:
                    member.close()  # its data descriptor
                member = archive.open(_info(entry), "w")
            assert member is not None
            member.write(chunk)
            for part in sink.take():
                yield part
    if member is not None:
        member.close()
    archive.close()
    yield b"".join(sink.take())  # the last data descriptor and the central directory


Opened = tuple[AsyncIterator[bytes], bytes] | None  # the rest of an object, and its start


async def _open(entry: ZipEntry) -> Opened:
    """The entry's stream and its first chunk; None when its object is missing."""
    chunks = entry.open()
    try:
        return chunks, await anext(chunks, b"")
    except ObjectNotFound:
        log.info("album download skips a missing object", extra={"entry": entry.name})
    except BaseException:
        await _close(chunks)
        raise
    await _close(chunks)
    return None


async def _close(chunks: AsyncIterator[bytes]) -> None:
    await chunks.aclose()  # type: ignore[attr-defined]


async def _chunks(
    entries: Iterable[ZipEntry], open_ahead: int
) -> AsyncGenerator[tuple[ZipEntry | None, bytes]]:
    """Every entry's chunks, the first paired with its entry, the rest with None; the
    next `open_ahead` entries are opened concurrently."""
    upcoming = iter(entries)
    opening: deque[tuple[ZipEntry, asyncio.Task[Opened]]] = deque()

    def open_more() -> None:
        while len(opening) < open_ahead and (entry := next(upcoming, None)) is not None:
            opening.append((entry, asyncio.create_task(_open(entry))))

    try:
        open_more()
        while opening:
            entry, task = opening.popleft()
            open_more()
            opened = await task
            if opened is None:
                continue
            chunks, first = opened
            try:
                yield entry, first
                async for chunk in chunks:
                    yield None, chunk
            finally:
                await _close(chunks)
    finally:
        for _, task in opening:  # stopped early: close what was opened ahead
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                if (opened := await task) is not None:
                    await _close(opened[0])


async def _prefetched(source: AsyncGenerator[T], depth: int) -> AsyncGenerator[T]:
    """`source`'s items, read by a task of their own up to `depth` items ahead."""
    queue: asyncio.Queue[tuple[T] | BaseException | None] = asyncio.Queue(depth)

    async def produce() -> None:
        try:
            async for item in source:
                await queue.put((item,))
        except Exception as exc:  # handed to the consumer, which raises it
            await queue.put(exc)
        else:
            await queue.put(None)
        finally:
            await source.aclose()  # closes the storage stream it was reading

    producer = asyncio.create_task(produce())
    try:
        while (found := await queue.get()) is not None:
            if isinstance(found, BaseException):
                raise found
            yield found[0]
    finally:
        producer.cancel()  # the client went away, or we are done: stop reading
        with contextlib.suppress(asyncio.CancelledError):
            await producer
