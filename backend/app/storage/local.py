"""Objects as files under a root directory, written atomically and read in worker threads."""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread

from app.storage.base import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    check_key,
)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Errors that mean "the disk cannot take this right now" rather than "this code is wrong".
_UNAVAILABLE = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
        errno.EACCES,
        errno.ESTALE,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
    }
)
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_Infos = list[ObjectInfo]


class LocalStorage:
    """Each key is a file under `root`; writes go through `tmp_dir` and `os.replace`.

    `tmp_dir` must be on the same filesystem as `root` so the final rename is atomic.
    """

    def __init__(self, root: Path, tmp_dir: Path, *, max_threads: int = 16) -> None:
        self._root = Path(os.path.abspath(root))
        self._tmp = Path(os.path.abspath(tmp_dir))
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def start(self) -> None:
        """Create the directories and check that renames from `tmp_dir` are atomic."""
        await self._run(self._start)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await self._run(self._put_file, check_key(key), path)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._run(self._put_bytes, check_key(key), data)

    async def get_bytes(self, key: str) -> bytes:
        return await self._run(self._read_all, check_key(key))

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        file = await self._run(self._open_at, check_key(key), start)
        try:
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = await self._run(file.read, size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            # Closing a regular file does not block; a thread hop here could be cancelled
            # or run during interpreter shutdown and leak the descriptor.
            file.close()

    async def stat(self, key: str) -> ObjectInfo | None:
        return await self._run(self._stat, check_key(key))

    async def delete(self, key: str) -> None:
        await self._run(self._delete, check_key(key))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        stack = [_directory_part(prefix)]
        while stack:
            infos, subdirs = await self._run(self._scan, stack.pop(), prefix)
            stack.extend(subdirs)
            for info in infos:
                yield info

    async def ping(self) -> None:
        await self._run(self._ping)

    async def close(self) -> None:
        return None

    async def _run(self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except OSError as exc:
            if exc.errno in _UNAVAILABLE:
                raise StorageUnavailable() from exc
            raise StorageError(f"local storage failed: {exc}") from exc

    async def local_path(self, key: str) -> Path | None:
        path = await self._run(self._existing_path, key)
        if path is None:
            raise ObjectNotFound(key)
        return path

    # Everything below runs in a worker thread.

    def _existing_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def _path(self, key: str) -> Path:
        """The file for `key`, refusing any path that resolves outside the root."""
        path = self._root / key
        if not os.path.realpath(path).startswith(os.path.realpath(self._root) + os.sep):
            raise InvalidKey(f"storage key {key!r} escapes the storage root")
        return path

    def _start(self) -> None:
        _make_dirs(self._root)
        _make_dirs(self._tmp)
        if os.stat(self._root).st_dev != os.stat(self._tmp).st_dev:
            raise StorageError(f"{self._tmp} and {self._root} must be on the same filesystem")

    def _put_bytes(self, key: str, data: bytes) -> None:
        def write(out: BinaryIO) -> None:
            out.write(data)

        _write_atomically(self._path(key), write, self._tmp, self._root)

    def _put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        if _rename_into(source, target):
            return

        def copy(out: BinaryIO) -> None:
            with open(source, "rb") as file:
                shutil.copyfileobj(file, out, 1024 * 1024)

        _write_atomically(target, copy, self._tmp, self._root)

    def _read_all(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as file:
                return file.read()
        except _MISSING:
            raise ObjectNotFound(key) from None

    def _open_at(self, key: str, start: int) -> BinaryIO:
        try:
            file = open(self._path(key), "rb")  # noqa: SIM115 - the stream closes it
        except _MISSING:
            raise ObjectNotFound(key) from None
        try:
            file.seek(start)
        except BaseException:
            file.close()
            raise
        return file

    def _stat(self, key: str) -> ObjectInfo | None:
        try:
            info = os.stat(self._path(key))
        except _MISSING:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return _object_info(key, info)

    def _delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except _MISSING:
            return

    def _scan(self, directory: str, prefix: str) -> tuple[_Infos, builtins.list[str]]:
        """The objects matching `prefix` in one directory, and the subdirectories to visit."""
        infos: _Infos = []
        subdirs: builtins.list[str] = []
        if directory and not self._is_safe_directory(directory):
            return infos, subdirs  # no key can start with this prefix
        tmp_id = _file_id(self._tmp)
        try:
            entries = list(os.scandir(self._root / directory))
        except _MISSING:
            return infos, subdirs
        for entry in entries:
            key = directory + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except _MISSING:
                continue
            if stat.S_ISDIR(info.st_mode):
                if (info.st_dev, info.st_ino) != tmp_id and _may_hold(key + "/", prefix):
                    subdirs.append(key + "/")
            elif stat.S_ISREG(info.st_mode) and key.startswith(prefix) and _is_key(key):
                infos.append(_object_info(key, info))
        return infos, subdirs

    def _is_safe_directory(self, directory: str) -> bool:
        try:
            self._path(check_key(directory.rstrip("/")))
        except InvalidKey:
            return False
        return True

    def _ping(self) -> None:
        _require_writable(self._root, self._tmp)


# File-system helpers: functions of paths only, run in a worker thread like the methods.


def _rename_into(source: Path, target: Path) -> bool:
    """Move the regular file `source` to `target` durably; False when it must be copied."""
    _make_dirs(target.parent)
    if not stat.S_ISREG(os.lstat(source).st_mode):
        return False
    with open(source, "rb") as file:
        os.fsync(file.fileno())
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        return False
    _fsync_dir(target.parent)
    return True


def _write_atomically(
    target: Path, write: Callable[[BinaryIO], None], tmp: Path, root: Path
) -> None:
    """Write `target` through a temporary file in `tmp` (on the filesystem of `root`)."""
    _make_dirs(target.parent)
    _make_dirs(tmp)
    fd, temp = tempfile.mkstemp(dir=tmp, prefix=".put-")
    try:
        with open(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.EXDEV:
            message = f"{tmp} must be on the filesystem of {root}"
            raise StorageError(message) from exc
        raise
    _fsync_dir(target.parent)


def _make_dirs(directory: Path) -> None:
    """Create `directory` and any missing parents, each one durably."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _fsync_dir(path.parent)


def _require_writable(*directories: Path) -> None:
    for directory in directories:
        if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
            raise StorageUnavailable()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except _MISSING:
        return None
    return info.st_dev, info.st_ino


def _object_info(key: str, info: os.stat_result) -> ObjectInfo:
    modified = datetime.fromtimestamp(info.st_mtime, tz=UTC)
    return ObjectInfo(key=key, size=info.st_size, last_modified=modified)


def _directory_part(prefix: str) -> str:
    """The deepest directory that every key starting with `prefix` lives under."""
    return prefix[: prefix.rfind("/") + 1]


def _may_hold(directory: str, prefix: str) -> bool:
    return directory.startswith(prefix) or prefix.startswith(directory)


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except InvalidKey:
        return False
    return True
