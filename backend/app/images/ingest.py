"""Streaming multipart ingest: file parts go to temporary files, hashed and counted.

The body is read chunk by chunk from the ASGI stream; nothing holds more than about
`SPILL_BYTES` of a file in memory, and a file over the limit stops the read at once.
Everything else a body may carry is capped too (form fields and their size here, part
headers by python-multipart), so a body made of anything but files is refused early. A
spool that cannot be written (disk full, folder gone) is the server's problem: 503,
never a 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote

import anyio
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import parse_options_header

from app.errors import AppError, InvalidRequest, ServiceUnavailable, ValidationFailed

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from app.images.errors import FileTooLarge

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
_FILENAME_STAR = re.compile(rb"filename\*\s*=\s*([^;]+)", re.IGNORECASE)
# RFC 8187: recipients must support UTF-8 and ISO-8859-1; nothing else is decoded.
_FILENAME_CHARSETS = {
    "": "utf-8",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-1": "latin-1",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "us-ascii": "ascii",
    "ascii": "ascii",
}


@dataclass
class ReceivedFile:
    """One file part, spooled to `path`; `too_large` and `refused` parts keep no data
    (in a batch, each of them gets its own error result)."""

    filename: str
    path: Path
    size: int = 0
    too_large: bool = False
    refused: AppError | None = None
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
                try:
                    await anyio.to_thread.run_sync(_append, received_file, data)
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
            return
        self._file_parts_seen += 1
        self._keep_spooled_fresh()
        if self._file_parts_seen > self.max_files:
            raise InvalidRequest(
                f"At most {self.max_files} file(s) per request",
                details={"max_files": self.max_files},
            )
        refused = None
        try:
            filename = _part_filename(disposition, options)
        except InvalidRequest as exc:
            if self.fail_fast:
                raise
            refused, filename = exc, options.get(b"filename", b"").decode("utf-8", "replace")
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=self.tmp_dir)
            os.close(fd)
        except OSError as exc:
            raise _spool_unavailable(exc) from exc
        received_file = ReceivedFile(filename=filename, path=Path(path), refused=refused)
        self.files.append(received_file)
        self._part.file = received_file

    def _keep_spooled_fresh(self) -> None:
        """Touch the spool files of the earlier parts. They sit idle while later parts
        arrive, which in a slow batch can outlast STALE_SPOOL_SECONDS: the stale-spool
        sweep must not take them from under an upload still in progress."""
        for earlier in self.files:
            with contextlib.suppress(OSError):  # best effort: writing it is what matters
                os.utime(earlier.path)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part.size += end - start
        received_file = part.file
        if received_file is None:
            if part.size > MAX_FIELD_BYTES:
                raise InvalidRequest("A form field is too large")
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


def _append(received_file: ReceivedFile, data: bytes) -> None:
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


def _part_filename(disposition: bytes, options: dict[bytes, bytes]) -> str:
    star = _FILENAME_STAR.search(disposition)
    if star and b"'" in star.group(1):
        charset, _, rest = star.group(1).strip().strip(b'"').partition(b"'")
        _, _, encoded = rest.partition(b"'")
        codec = _FILENAME_CHARSETS.get(charset.decode("latin-1").strip().lower())
        if codec is None:
            raise InvalidRequest(
                "filename* names a charset other than UTF-8 or ISO-8859-1",
                details={"charsets": ["UTF-8", "ISO-8859-1"]},
            )
        return unquote(encoded.decode("ascii", "replace"), encoding=codec, errors="replace")
    name = options.get(b"filename", b"").decode("utf-8", "replace")
    # Browsers (WHATWG form encoding) escape exactly these three characters in filenames.
    return name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
