"""Build the configured storage backend, ready to use."""

from __future__ import annotations

from app.config import Settings
from app.storage.base import Storage
from app.storage.local import LocalStorage
from app.storage.memory import MemoryStorage
from app.storage.s3 import S3Storage


async def build_storage(settings: Settings) -> Storage:
    """The backend named by `STORAGE_BACKEND`, with its directories or bucket created."""
    if settings.storage_backend == "memory":
        return MemoryStorage()
    if settings.storage_backend == "s3":
        return await _build_s3(settings)
    local = LocalStorage(settings.data_dir / "objects", settings.tmp_dir)
    await local.start()
    return local


async def _build_s3(settings: Settings) -> S3Storage:
    if not (settings.s3_endpoint_url and settings.s3_access_key and settings.s3_secret_key):
        raise ValueError("STORAGE_BACKEND=s3 needs S3_ENDPOINT_URL, S3_ACCESS_KEY, S3_SECRET_KEY")
    s3 = S3Storage(
        settings.s3_endpoint_url,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        settings.s3_bucket,
        settings.s3_region,
    )
    try:
        await s3.start()
    except BaseException:
        await s3.close()
        raise
    return s3
