"""Streaming multipart ingest: file parts go to temporary files, hashed and counted.

The body is read chunk by chunk from the ASGI stream; nothing holds more than about
`SPILL_BYTES` of a file in memory, and a file over the limit stops the read at once.
Everything else a body may carry is capped too (form fields and their size here, part
headers by python-multipart), so a body made of anything but files is refused early. A
spool that cannot be written (disk full, folder gone) is the server's problem: 503,
never a 500. Every touch of the spool folder (create, write, close, remove) runs in a
worker thread: the event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import parse_options_header

from app.errors import AppError, InvalidRequest, ServiceUnavailable, ValidationFailed
from app.images.disposition import part_filename
from app.images.errors import FileTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

log = logging.getLogger(__name__)

SPILL_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
# Parts other than the expected file parts (form fields, files under other names) that
# one request may carry; each costs parser work, so a flood of them is refused early.
MAX_FORM_FIELDS = 16
MULTIPART_OVERHEAD = 64 * 1024
SPOOL_PREFIX = "upload-"
SPOOL_RETRY_AFTER = 5
# A spool file this old belongs to no upload in progress (one killed mid-way left it).
STALE_SPOOL_SECONDS = 3600


@dataclass
class ReceivedFile:
    """One file part, spooled to `path`; `too_large` and `refused` parts keep no data
    (in a batch, each of them gets its own error result). The file is created on the
    first flush after the part's headers (`_spool`), in a thread."""

    filename: str
    path: Path
    size: int = 0
    too_large: bool = False
    refused: AppError | None = None
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    _pending: bytearray = field(default_factory=bytearray, repr=False)
    _fh: IO[bytes] | None = field(default=None, repr=False)
    _created: bool = field(default=False, repr=False)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Close and remove the spool file. Blocking: from async code, `discard_async`."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._created:  # else there is nothing, maybe not even a folder, to remove
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def discard_async(self) -> None:
        """`discard` in a thread."""
        await discard_all([self])


async def discard_all(files: Iterable[ReceivedFile]) -> None:
    """Remove the spool files of `files`, in one thread; finishes even when cancelled,
    so no spool file outlives its upload."""
    files = list(files)
    if not files:
        return
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_discard_each, files)


def _discard_each(files: list[ReceivedFile]) -> None:
    for received_file in files:
        received_file.discard()


@dataclass
class _Part:
    name: str | None = None
    file: ReceivedFile | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    size: int = 0
    value: bytearray | None = None  # a form field that is kept (`form_fields`)


class MultipartIngest:
    """Parses a multipart body from an async byte stream into spooled files."""

    def __init__(
        self,
        *,
        content_type: str,
        field_name: str,
        max_files: int,
        max_file_bytes: int,
        tmp_dir: Path,
        fail_fast: bool,
        form_fields: frozenset[str] = frozenset(),
    ) -> None:
        self.field_name = field_name
        # Text fields to keep (the first of each name), e.g. an upload's title.
        self.form_fields = form_fields
        self.fields: dict[str, str] = {}
        self.max_files = max_files
        self.max_file_bytes = max_file_bytes
        self.tmp_dir = tmp_dir
        self.fail_fast = fail_fast
        self.files: list[ReceivedFile] = []
        self._file_parts_seen = 0
        self._touch_earlier = False
        self._fields_seen = 0
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        boundary = _boundary(content_type)
        try:
            self._parser = MultipartParser(boundary, self._callbacks())
        except (FormParserError, ValueError) as exc:  # e.g. a boundary over 256 bytes
            raise _not_multipart("the multipart boundary is not acceptable") from exc

    async def consume(
        self, stream: AsyncIterator[bytes], max_body_bytes: int
    ) -> list[ReceivedFile]:
        """Read the whole body; on any error every spooled file is removed."""
        received = 0
        try:
            async for chunk in stream:
                received += len(chunk)
                if received > max_body_bytes:
                    raise FileTooLarge(self.max_file_bytes)
                self._feed(chunk)
                await self._flush_pending()
            self._parser.finalize()
            await self._flush_pending(final=True)
        except BaseException:
            await discard_all(self.files)
            raise
        return self.files

    def _feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidRequest("The multipart body is malformed") from exc

    async def _flush_pending(self, final: bool = False) -> None:
        if self._touch_earlier:
            await self._keep_spooled_fresh()
        for received_file in self.files:
            pending, data = received_file._pending, b""
            if pending and (final or len(pending) >= SPILL_BYTES):
                data = bytes(pending)
                pending.clear()
            if data or not received_file._created:
                try:
                    await anyio.to_thread.run_sync(_spool, received_file, data)
                except OSError as exc:
                    raise _spool_unavailable(exc) from exc
            if final and received_file._fh is not None:
                try:
                    await anyio.to_thread.run_sync(received_file._fh.close)
                except OSError as exc:
                    raise _spool_unavailable(exc) from exc
                finally:
                    received_file._fh = None

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_end": self._on_part_end,
        }

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        # python-multipart caps each header line (4 KiB) and the headers of a part (8).
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition = self._part.headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part.name = name
        if name != self.field_name or (
            b"filename" not in options and b"filename*" not in disposition
        ):
            self._fields_seen += 1
            if self._fields_seen > MAX_FORM_FIELDS:
                raise InvalidRequest(
                    f"At most {MAX_FORM_FIELDS} form fields besides the files per request",
                    details={"max_form_fields": MAX_FORM_FIELDS},
                )
            if name in self.form_fields and name not in self.fields:
                self._part.value = bytearray()
            return
        self._file_parts_seen += 1
        self._touch_earlier = True  # done by the next flush, in a thread
        if self._file_parts_seen > self.max_files:
            raise InvalidRequest(
                f"At most {self.max_files} file(s) per request",
                details={"max_files": self.max_files},
            )
        refused = None
        try:
            filename = part_filename(disposition, options)
        except InvalidRequest as exc:
            if self.fail_fast:
                raise
            refused, filename = exc, options.get(b"filename", b"").decode("utf-8", "replace")
        # Named here, created by the next flush, in a thread (see `_spool`).
        path = self.tmp_dir / f"{SPOOL_PREFIX}{secrets.token_hex(8)}"
        received_file = ReceivedFile(filename=filename, path=path, refused=refused)
        self.files.append(received_file)
        self._part.file = received_file

    async def _keep_spooled_fresh(self) -> None:
        """Touch the spool files of the earlier parts. They sit idle while later parts
        arrive, which in a slow batch can outlast STALE_SPOOL_SECONDS: the stale-spool
        sweep must not take them from under an upload still in progress."""
        self._touch_earlier = False
        paths = [earlier.path for earlier in self.files if earlier._created]
        await anyio.to_thread.run_sync(_touch, paths)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part.size += end - start
        received_file = part.file
        if received_file is None:
            if part.size > MAX_FIELD_BYTES:
                raise InvalidRequest("A form field is too large")
            if part.value is not None:
                part.value += data[start:end]
            return
        if received_file.too_large or received_file.refused is not None:
            return
        received_file.size = part.size
        if part.size > self.max_file_bytes:
            if self.fail_fast:
                raise FileTooLarge(self.max_file_bytes)
            received_file.too_large = True
            received_file._pending.clear()
            return
        piece = data[start:end]
        received_file._hash.update(piece)
        received_file._pending += piece

    def _on_part_end(self) -> None:
        part = self._part
        if part.value is not None and part.name is not None:
            self.fields.setdefault(part.name, part.value.decode("utf-8", "replace"))
            part.value = None


def _touch(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):  # best effort: writing it is what matters
            os.utime(path)


def _spool(received_file: ReceivedFile, data: bytes) -> None:
    """Append `data` to the part's spool file, creating it (as `mkstemp` would: new,
    owner-only) the first time. Blocking: run it in a thread."""
    if not received_file._created:
        received_file.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(received_file.path, flags, 0o600)
        received_file._created = True
        received_file._fh = os.fdopen(fd, "wb")
    if not data:
        return
    if received_file._fh is None:
        received_file._fh = received_file.path.open("ab")
    received_file._fh.write(data)


def clear_stale_spool(
    tmp_dir: Path, *, older_than: float = STALE_SPOOL_SECONDS, dry_run: bool = False
) -> list[str]:
    """Remove `upload-*` spool files last written over `older_than` seconds ago (a
    process killed mid-upload leaves them); the names of those found. Blocking: run it
    in a thread."""
    cutoff = time.time() - older_than
    found = []
    try:
        candidates = list(tmp_dir.glob(f"{SPOOL_PREFIX}*"))
    except OSError:
        return []
    for path in candidates:
        try:
            if not path.is_file() or path.stat().st_mtime >= cutoff:
                continue
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning(
                "cannot remove a stale spool file", extra={"path": str(path), "error": str(exc)}
            )
            continue
        found.append(path.name)
    if found and not dry_run:
        log.info("removed stale spool files", extra={"count": len(found)})
    return found


def _spool_unavailable(exc: OSError) -> ServiceUnavailable:
    """The spool folder cannot take the upload (full, read-only, gone): retry later."""
    log.error("upload spool unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
    error = ServiceUnavailable(
        "The server cannot store uploads right now; retry shortly", retry_after=SPOOL_RETRY_AFTER
    )
    error.headers["Connection"] = "close"  # the rest of the body is not read
    return error


def _not_multipart(why: str) -> ValidationFailed:
    return ValidationFailed(
        "The body must be multipart/form-data",
        details={"errors": [{"loc": ["body"], "msg": why}]},
    )


def _boundary(content_type: str) -> bytes:
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise _not_multipart("expected multipart/form-data")
    return boundary
