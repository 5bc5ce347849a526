"""Streaming multipart ingest: file parts go to temporary files, hashed and counted.

The body is read chunk by chunk from the ASGI stream; nothing holds more than about
`SPILL_BYTES` of a file in memory, and a file over the limit stops the read at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote

import anyio
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from app.errors import InvalidRequest, ValidationFailed

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from app.images.errors import FileTooLarge

SPILL_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024
_FILENAME_STAR = re.compile(rb"filename\*\s*=\s*([^;]+)", re.IGNORECASE)


@dataclass
class ReceivedFile:
    """One file part, spooled to `path`; `too_large` parts keep no data."""

    filename: str
    path: Path
    size: int = 0
    too_large: bool = False
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    _pending: bytearray = field(default_factory=bytearray, repr=False)
    _fh: IO[bytes] | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class _Part:
    name: str | None = None
    file: ReceivedFile | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    size: int = 0


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
    ) -> None:
        self.field_name = field_name
        self.max_files = max_files
        self.max_file_bytes = max_file_bytes
        self.tmp_dir = tmp_dir
        self.fail_fast = fail_fast
        self.files: list[ReceivedFile] = []
        self._file_parts_seen = 0
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parser = MultipartParser(_boundary(content_type), self._callbacks())

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
            self.cleanup()
            raise
        return self.files

    def cleanup(self) -> None:
        for received_file in self.files:
            received_file.discard()

    def _feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidRequest("The multipart body is malformed") from exc

    async def _flush_pending(self, final: bool = False) -> None:
        for received_file in self.files:
            if received_file._pending and (final or len(received_file._pending) >= SPILL_BYTES):
                data = bytes(received_file._pending)
                received_file._pending.clear()
                await anyio.to_thread.run_sync(_append, received_file, data)
            if final and received_file._fh is not None:
                await anyio.to_thread.run_sync(received_file._fh.close)
                received_file._fh = None

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
        }

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
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
            return
        self._file_parts_seen += 1
        if self._file_parts_seen > self.max_files:
            raise InvalidRequest(
                f"At most {self.max_files} file(s) per request",
                details={"max_files": self.max_files},
            )
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
        os.close(fd)
        received_file = ReceivedFile(filename=_part_filename(disposition, options), path=Path(path))
        self.files.append(received_file)
        self._part.file = received_file

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part.size += end - start
        received_file = part.file
        if received_file is None:
            if part.size > MAX_FIELD_BYTES:
                raise InvalidRequest("A form field is too large")
            return
        if received_file.too_large:
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


def _append(received_file: ReceivedFile, data: bytes) -> None:
    if received_file._fh is None:
        received_file._fh = received_file.path.open("ab")
    received_file._fh.write(data)


def _boundary(content_type: str) -> bytes:
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise ValidationFailed(
            "The body must be multipart/form-data",
            details={"errors": [{"loc": ["body"], "msg": "expected multipart/form-data"}]},
        )
    return boundary


def _part_filename(disposition: bytes, options: dict[bytes, bytes]) -> str:
    star = _FILENAME_STAR.search(disposition)
    if star:
        charset, _, rest = star.group(1).strip().strip(b'"').partition(b"'")
        _, _, encoded = rest.partition(b"'")
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            return unquote(encoded.decode("ascii", "replace"), encoding=charset.decode() or "utf-8")
    name = options.get(b"filename", b"").decode("utf-8", "replace")
    # Browsers (WHATWG form encoding) escape exactly these three characters in filenames.
    return name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
