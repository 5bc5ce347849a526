"""The storage contract, run against the memory, local and S3 backends alike."""

from __future__ import annotations

import errno
import gc
import os
import socket
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from anyio.lowlevel import checkpoint

from app.config import Settings
from app.storage.base import InvalidKey, ObjectInfo, ObjectNotFound, Storage, StorageUnavailable
from app.storage.factory import build_storage
from app.storage.local import LocalStorage
from tests.storage.conftest import local_settings, s3_storage
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.anyio

SMALL = bytes(range(256)) * 4  # 1 KiB, every byte value
LARGE = os.urandom(3 * 1024 * 1024 + 17)


async def collect(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.stream(key, start, end)])


async def listed(storage: Storage, prefix: str = "") -> dict[str, ObjectInfo]:
    return {info.key: info async for info in storage.list(prefix)}


# Writing and reading


async def test_put_bytes_then_get_bytes(storage: Storage) -> None:
    await storage.put_bytes("ab/cd/abcdef.png", SMALL, "image/png")

    assert await storage.get_bytes("ab/cd/abcdef.png") == SMALL


async def test_put_file_then_get_bytes(storage: Storage, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(LARGE)

    await storage.put_file("originals/large.webp", upload, "image/webp")

    assert await storage.get_bytes("originals/large.webp") == LARGE


async def test_put_file_larger_than_one_upload_part(storage: Storage, tmp_path: Path) -> None:
    data = LARGE * 2 + SMALL  # past S3's 5 MiB minimum part: a multipart upload
    upload = tmp_path / "big.bin"
    upload.write_bytes(data)

    await storage.put_file("big.png", upload, "image/png")

    assert await storage.get_bytes("big.png") == data


async def test_put_file_of_zero_bytes(storage: Storage, tmp_path: Path) -> None:
    upload = tmp_path / "empty.bin"
    upload.write_bytes(b"")

    await storage.put_file("empty.gif", upload, "image/gif")

    assert await storage.get_bytes("empty.gif") == b""
    assert await collect(storage, "empty.gif") == b""
    info = await storage.stat("empty.gif")
    assert info is not None
    assert info.size == 0


async def test_overwrite_replaces_the_whole_object(storage: Storage) -> None:
    await storage.put_bytes("same.jpg", LARGE, "image/jpeg")
    await storage.put_bytes("same.jpg", SMALL, "image/jpeg")

    assert await storage.get_bytes("same.jpg") == SMALL
    info = await storage.stat("same.jpg")
    assert info is not None
    assert info.size == len(SMALL)


async def test_get_missing_raises(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.get_bytes("no/such/key.png")


# Streaming


async def test_stream_whole_object(storage: Storage) -> None:
    await storage.put_bytes("whole.png", SMALL, "image/png")

    assert await collect(storage, "whole.png") == SMALL


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 0),  # first byte
        (1023, 1023),  # last byte
        (1023, None),
        (100, 199),  # middle
        (5, None),
        (1000, 5000),  # end past the last byte is clamped
        (1024, None),  # start past the last byte yields nothing
        (10, 9),  # empty range
    ],
)
async def test_stream_range_is_inclusive(storage: Storage, start: int, end: int | None) -> None:
    await storage.put_bytes("range.bin", SMALL, "application/octet-stream")

    expected = SMALL[start:] if end is None else SMALL[start : end + 1]
    assert await collect(storage, "range.bin", start, end) == expected


async def test_stream_large_object_in_chunks(storage: Storage) -> None:
    await storage.put_bytes("large.bin", LARGE, "application/octet-stream")

    chunks = [chunk async for chunk in storage.stream("large.bin", chunk_size=512 * 1024)]

    assert b"".join(chunks) == LARGE
    assert len(chunks) >= 6
    assert all(0 < len(chunk) <= 512 * 1024 for chunk in chunks)


def open_stream(storage: Storage, key: str, start: int = 0) -> AsyncGenerator[bytes, None]:
    """A stream that can be closed early, as every backend's stream is a generator."""
    chunks = storage.stream(key, start, chunk_size=1024)
    assert isinstance(chunks, AsyncGenerator)
    return chunks


async def test_stream_missing_raises_on_first_iteration(storage: Storage) -> None:
    chunks = open_stream(storage, "missing.png")  # creating the stream does no I/O

    async with aclosing(chunks):
        with pytest.raises(ObjectNotFound):
            await anext(chunks)


async def test_abandoned_streams_release_their_resources(storage: Storage) -> None:
    await storage.put_bytes("abandon.bin", LARGE, "application/octet-stream")

    async with aclosing(open_stream(storage, "abandon.bin")) as chunks:
        async for _ in chunks:
            break
    dropped = open_stream(storage, "abandon.bin", 10)
    assert len(await anext(dropped)) == 1024
    del dropped  # left to the event loop's async-generator finalizer
    gc.collect()
    for _ in range(5):
        await checkpoint()

    # Warnings are errors, so an unclosed file or socket would have failed the test.
    assert await collect(storage, "abandon.bin", 0, 9) == LARGE[:10]


# Metadata, deletion and listing


async def test_stat_reports_size_and_aware_utc_time(storage: Storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    await storage.put_bytes("stat/me.png", SMALL, "image/png")

    info = await storage.stat("stat/me.png")

    assert info is not None
    assert (info.key, info.size) == ("stat/me.png", len(SMALL))
    assert info.last_modified.utcoffset() == timedelta(0)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)


async def test_stat_missing_is_none(storage: Storage) -> None:
    await storage.put_bytes("dir/file.png", SMALL, "image/png")

    assert await storage.stat("nothing.png") is None
    assert await storage.stat("dir") is None  # a "directory" is not an object


async def test_delete_removes_and_is_idempotent(storage: Storage) -> None:
    await storage.put_bytes("gone.png", SMALL, "image/png")

    await storage.delete("gone.png")
    await storage.delete("gone.png")
    await storage.delete("never/existed.png")

    assert await storage.stat("gone.png") is None
    with pytest.raises(ObjectNotFound):
        await storage.get_bytes("gone.png")
    with pytest.raises(ObjectNotFound):
        await collect(storage, "gone.png")


async def test_list_finds_exactly_what_was_put(storage: Storage) -> None:
    for key in ("a/1.png", "a/2.png", "ab/3.png", "b/4.png", "a/deep/er/5.png"):
        await storage.put_bytes(key, SMALL, "image/png")
    await storage.put_bytes("a/2.png", b"xy", "image/png")

    everything = await listed(storage)
    assert set(everything) == {"a/1.png", "a/2.png", "ab/3.png", "b/4.png", "a/deep/er/5.png"}
    assert everything["a/2.png"].size == 2
    assert everything["a/1.png"].last_modified.utcoffset() == timedelta(0)
    assert set(await listed(storage, "a/")) == {"a/1.png", "a/2.png", "a/deep/er/5.png"}
    assert set(await listed(storage, "a")) == {"a/1.png", "a/2.png", "ab/3.png", "a/deep/er/5.png"}
    assert set(await listed(storage, "a/deep/e")) == {"a/deep/er/5.png"}
    assert set(await listed(storage, "zz")) == set()
    assert set(await listed(storage, "../")) == set()


async def test_list_of_empty_storage_is_empty(storage: Storage) -> None:
    assert await listed(storage) == {}


@pytest.mark.parametrize(
    "key", ["../escape.png", "/etc/passwd", "a/../../b", "a//b", "a/./b", "a/", "", "A.png", "a b"]
)
async def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        await storage.put_bytes(key, SMALL, "image/png")
    with pytest.raises(InvalidKey):
        await storage.get_bytes(key)
    with pytest.raises(InvalidKey):
        await storage.stat(key)


async def test_ping(storage: Storage) -> None:
    await storage.ping()


async def test_local_path_is_the_object_file_or_none_for_remote_backends(
    storage: Storage,
) -> None:
    await storage.put_bytes("originals/aa/file", SMALL, "image/png")
    path = await storage.local_path("originals/aa/file")
    if isinstance(storage, LocalStorage):
        assert path is not None
        assert await anyio.Path(path).read_bytes() == SMALL
        with pytest.raises(ObjectNotFound):
            await storage.local_path("originals/aa/missing")
    else:
        assert path is None


# Local backend only


@pytest.fixture
async def local(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "objects", tmp_path / "tmp")
    await storage.start()
    return storage


def _files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


async def test_local_refuses_a_symlink_out_of_the_root(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    (tmp_path / "objects" / "evil").symlink_to(outside)

    with pytest.raises(InvalidKey):
        await local.get_bytes("evil/secret.png")
    with pytest.raises(InvalidKey):
        await local.put_bytes("evil/new.png", SMALL, "image/png")
    assert not (outside / "new.png").exists()
    assert await listed(local, "evil/") == {}


async def test_local_failed_write_leaves_nothing_behind(
    local: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local.put_bytes("kept.png", SMALL, "image/png")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageUnavailable):
        await local.put_bytes("kept.png", LARGE, "image/png")
    with pytest.raises(StorageUnavailable):
        await local.put_bytes("fresh.png", LARGE, "image/png")
    monkeypatch.undo()

    assert await local.get_bytes("kept.png") == SMALL
    assert await local.stat("fresh.png") is None
    assert _files(tmp_path / "tmp") == []
    assert set(await listed(local)) == {"kept.png"}


async def test_local_put_file_moves_or_copies(local: LocalStorage, tmp_path: Path) -> None:
    upload = tmp_path / "tmp" / "upload"
    upload.write_bytes(SMALL)
    linked = tmp_path / "link"
    linked.symlink_to(upload)

    await local.put_file("copied.png", linked, "image/png")  # not a regular file: copied
    await local.put_file("moved.png", upload, "image/png")

    assert await local.get_bytes("copied.png") == SMALL
    assert await local.get_bytes("moved.png") == SMALL
    assert not (tmp_path / "objects" / "copied.png").is_symlink()
    assert _files(tmp_path / "tmp") == []


async def test_local_list_skips_a_tmp_dir_inside_the_root(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "objects", tmp_path / "objects" / "tmp")
    await local.start()
    await local.put_bytes("tmp2/a.png", SMALL, "image/png")
    (tmp_path / "objects" / "tmp" / "leftover").write_bytes(b"x")

    assert set(await listed(local)) == {"tmp2/a.png"}


async def test_local_ping_fails_without_its_directories(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable):
        await LocalStorage(tmp_path / "absent", tmp_path / "absent-tmp").ping()


# S3 backend only


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.s3
@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.ping(),
        lambda s: s.get_bytes("a.png"),
        lambda s: s.put_bytes("a.png", b"x", "image/png"),
        lambda s: s.stat("a.png"),
        lambda s: collect(s, "a.png"),
    ],
    ids=["ping", "get_bytes", "put_bytes", "stat", "stream"],
)
async def test_s3_unreachable_is_unavailable(call: Callable[[Storage], Awaitable[object]]) -> None:
    dead = SeaweedS3(endpoint_url=f"http://127.0.0.1:{_dead_port()}")
    storage = s3_storage(dead)
    try:
        with pytest.raises(StorageUnavailable):
            await call(storage)
    finally:
        await storage.close()


@pytest.mark.s3
async def test_s3_start_creates_the_bucket_once(seaweed: SeaweedS3) -> None:
    bucket = f"chitram-start-{uuid.uuid4().hex[:8]}"
    storages = [s3_storage(seaweed, bucket) for _ in range(3)]
    try:
        with pytest.raises(StorageUnavailable):
            await storages[0].ping()
        async with anyio.create_task_group() as group:
            for storage in storages:
                group.start_soon(storage.start)
        await storages[0].start()
        await storages[1].ping()
    finally:
        for storage in storages:
            await storage.close()


@pytest.mark.s3
async def test_s3_prefixes_keep_storages_apart(seaweed: SeaweedS3) -> None:
    first, second = s3_storage(seaweed, prefix="first/"), s3_storage(seaweed, prefix="second/")
    try:
        await first.start()
        await first.put_bytes("x.png", SMALL, "image/png")
        assert await second.stat("x.png") is None
        assert set(await listed(first)) == {"x.png"}
        assert "x.png" not in await listed(second)
    finally:
        await first.delete("x.png")
        await first.close()
        await second.close()


# Building from settings


async def test_build_local_creates_its_directories(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "data")

    storage = await build_storage(settings)

    assert (tmp_path / "data" / "objects").is_dir()
    assert settings.tmp_dir.is_dir()
    await storage.ping()
    await storage.close()


@pytest.mark.s3
async def test_build_s3_creates_the_bucket(seaweed: SeaweedS3) -> None:
    settings = Settings(
        _env_file=None,
        storage_backend="s3",
        s3_endpoint_url=seaweed.endpoint_url,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        s3_bucket=f"chitram-build-{uuid.uuid4().hex[:8]}",
    )

    storage = await build_storage(settings)

    try:
        await storage.ping()
    finally:
        await storage.close()
