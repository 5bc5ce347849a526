"""Objects in an S3 bucket through the synchronous MinIO SDK, one worker thread per call."""

from __future__ import annotations

import builtins
import io
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar, TypeVarTuple
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3.exceptions import HTTPError as Urllib3Error

from app.storage.base import ObjectInfo, ObjectNotFound, StorageError, StorageUnavailable, check_key

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_LIST_BATCH = 1000
_ALREADY_EXISTS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


class S3Storage:
    """Objects stored as `<prefix><key>` in one private bucket.

    Every SDK call runs in a worker thread, at most `max_threads` at a time. The HTTP pool
    fails fast (short connect timeout, two retries) so a dead S3 shows up as a 503 rather
    than a hung request.
    """

    def __init__(
        self,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str,
        *,
        prefix: str = "",
        max_threads: int = 8,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
    ) -> None:
        host, secure = _parse_endpoint(endpoint_url)
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=max(max_threads, 10),
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
            ),
        )
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=self._http,
        )
        self._bucket = bucket
        self._prefix = prefix
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def start(self) -> None:
        """Create the bucket unless it exists; safe when several processes start at once."""
        await self._run(self._ensure_bucket)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await self._run(self._put_file, self._name(key), path, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._run(self._put_bytes, self._name(key), data, content_type)

    async def get_bytes(self, key: str) -> bytes:
        return await self._run(self._get_bytes, self._name(key), key)

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        name = self._name(key)
        if end is not None and end < start:
            if await self.stat(key) is None:
                raise ObjectNotFound(key)
            return
        length = 0 if end is None else end - start + 1
        response = await self._run(self._open, name, key, start, length)
        if response is None:
            return
        try:
            while chunk := await self._run(response.read, chunk_size):
                yield chunk
        finally:
            # Closing only drops the socket, which does not block; an awaited thread hop
            # could be cancelled here and leak the connection.
            response.close()
            response.release_conn()

    async def local_path(self, key: str) -> Path | None:
        return None

    async def stat(self, key: str) -> ObjectInfo | None:
        return await self._run(self._stat, self._name(key), key)

    async def delete(self, key: str) -> None:
        await self._run(self._client.remove_object, self._bucket, self._name(key))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        objects = self._client.list_objects(
            self._bucket, prefix=self._prefix + prefix, recursive=True
        )
        while batch := await self._run(self._next_batch, objects):
            for info in batch:
                yield info

    async def ping(self) -> None:
        if not await self._run(self._client.bucket_exists, self._bucket):
            raise StorageUnavailable()

    async def close(self) -> None:
        self._http.clear()

    async def _run(self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except (Urllib3Error, ServerError, InvalidResponseError, ConnectionError) as exc:
            raise StorageUnavailable() from exc
        except S3Error as exc:
            raise StorageError(f"S3 {exc.code}: {exc.message}") from exc
        except OSError as exc:  # the local file given to put_file
            raise StorageError(f"S3 upload failed: {exc}") from exc

    def _name(self, key: str) -> str:
        return self._prefix + check_key(key)

    # Everything below runs in a worker thread.

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket)
        except S3Error as exc:
            if exc.code not in _ALREADY_EXISTS:
                raise

    def _put_file(self, name: str, path: Path, content_type: str) -> None:
        # One part at a time: SDK upload threads would escape the limiter.
        self._client.fput_object(
            self._bucket, name, str(path), content_type=content_type, num_parallel_uploads=1
        )

    def _put_bytes(self, name: str, data: bytes, content_type: str) -> None:
        self._client.put_object(
            self._bucket, name, io.BytesIO(data), len(data), content_type=content_type
        )

    def _get_bytes(self, name: str, key: str) -> bytes:
        response = self._open(name, key, 0, 0)
        if response is None:
            return b""
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _open(
        self, name: str, key: str, offset: int, length: int
    ) -> urllib3.BaseHTTPResponse | None:
        """The object's bytes as an unread response; None when `offset` is past the end."""
        try:
            return self._client.get_object(self._bucket, name, offset=offset, length=length)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise ObjectNotFound(key) from None
            if exc.code == "InvalidRange":
                return None
            raise

    def _stat(self, name: str, key: str) -> ObjectInfo | None:
        try:
            found = self._client.stat_object(self._bucket, name)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        return self._info(found)

    def _next_batch(self, objects: Iterator[Object]) -> builtins.list[ObjectInfo]:
        batch: builtins.list[ObjectInfo] = []
        for found in objects:
            if not found.is_dir:
                batch.append(self._info(found))
            if len(batch) >= _LIST_BATCH:
                break
        return batch

    def _info(self, found: Object) -> ObjectInfo:
        name = found.object_name or ""
        if found.size is None or found.last_modified is None:
            raise StorageError(f"S3 returned no size or date for {name!r}")
        key = name.removeprefix(self._prefix)
        return ObjectInfo(key=key, size=found.size, last_modified=found.last_modified)


def _parse_endpoint(endpoint_url: str) -> tuple[str, bool]:
    """`host[:port]` and whether to use TLS, from `http(s)://host[:port]`."""
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"S3 endpoint must be http(s)://host[:port], got {endpoint_url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"S3 endpoint must not have a path or credentials: {endpoint_url!r}")
    return parts.netloc, parts.scheme == "https"
