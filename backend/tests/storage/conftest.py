"""Fixtures that run the storage contract against every backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.config import Settings
from app.storage.base import Storage
from app.storage.factory import build_storage
from app.storage.s3 import S3Storage
from tests.support.seaweed import SeaweedS3

TEST_BUCKET = "chitram-test"


def s3_storage(server: SeaweedS3, bucket: str = TEST_BUCKET, prefix: str = "") -> S3Storage:
    return S3Storage(
        server.endpoint_url,
        server.access_key,
        server.secret_key,
        bucket,
        server.region,
        prefix=prefix,
    )


def local_settings(data_dir: Path) -> Settings:
    return Settings(_env_file=None, storage_backend="local", data_dir=data_dir)


@pytest.fixture(params=["memory", "local", pytest.param("s3", marks=pytest.mark.s3)])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A fresh, empty backend; S3 tests share one bucket under a prefix of their own."""
    backend: Storage
    if request.param == "s3":
        s3 = s3_storage(request.getfixturevalue("seaweed"), prefix=f"{uuid.uuid4().hex}/")
        await s3.start()
        backend = s3
    elif request.param == "local":
        backend = await build_storage(local_settings(tmp_path / "data"))
    else:
        backend = await build_storage(Settings(_env_file=None, storage_backend="memory"))
    try:
        yield backend
    finally:
        await backend.close()
