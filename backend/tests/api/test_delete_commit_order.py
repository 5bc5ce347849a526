"""Deleting commits the rows before removing objects.

A failed commit must leave the image whole, row and file; a storage that fails after
the commit leaves only an object without a row, which reconcile removes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.models.blob import object_key
from app.ops.reconcile import reconcile
from app.storage import StorageUnavailable
from app.storage.local import LocalStorage
from app.wiring import close_resources, open_resources
from tests.support import flows, images
from tests.support.app import app_client

pytestmark = pytest.mark.anyio

PIN_TYPES = {"sqlite": "CHAR(32)", "postgres": "UUID"}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"reconcile_grace_seconds": 0}


class _Pins:
    """A table outside the app whose rows refer to images with a deferred foreign key:
    deleting a pinned image fails at COMMIT (in the database, not in our code)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, statement: str, **params: str) -> None:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement), params)
        finally:
            await engine.dispose()

    async def pin(self, image_id: str) -> None:
        # Copied from the row, so it matches whatever form the dialect stores UUIDs in.
        await self.run(
            "INSERT INTO test_pins (image_id) SELECT id FROM images WHERE id IN (:dashed, :hex)",
            dashed=image_id,
            hex=image_id.replace("-", ""),
        )

    async def unpin(self) -> None:
        await self.run("DELETE FROM test_pins")


@pytest.fixture
async def pins(settings: Settings, database_kind: str) -> AsyncIterator[_Pins]:
    table = _Pins(settings.resolved_database_url)
    await table.run(
        f"CREATE TABLE test_pins (image_id {PIN_TYPES[database_kind]} REFERENCES images (id)"
        " DEFERRABLE INITIALLY DEFERRED)"
    )
    yield table
    await table.run("DROP TABLE test_pins")  # the PostgreSQL database outlives this test


def _object_files(settings: Settings) -> Iterator[Path]:
    return (p for p in (settings.data_dir / "objects").rglob("*") if p.is_file())


async def test_a_failed_commit_leaves_the_row_and_its_file(settings: Settings, pins: _Pins) -> None:
    data = images.png()
    async with app_client(settings, raise_app_exceptions=False) as client:
        body = (await client.post("/api/v1/images/upload", files={"file": ("a.png", data)})).json()
        await pins.pin(body["id"])
        failed = await client.delete(body["delete_url"])
        assert failed.status_code == 500
        assert (await client.get(f"/api/v1/images/{body['id']}")).status_code == 200
        served = await client.get(body["url"])
        assert served.status_code == 200
        assert served.content == data

        await pins.unpin()
        assert (await client.delete(body["delete_url"])).status_code == 204
        assert (await client.get(body["url"])).status_code == 404
    assert not [p for p in _object_files(settings) if "originals" in p.parts]


class _DeletesFail(LocalStorage):
    """Local storage whose deletes fail as an unreachable backend would."""

    async def delete(self, key: str) -> None:
        raise StorageUnavailable()


async def test_objects_a_failed_removal_leaves_are_reconciled(settings: Settings) -> None:
    storage = _DeletesFail(settings.data_dir / "objects", settings.tmp_dir)
    await storage.start()
    async with app_client(settings, storage=storage) as client:
        body = (
            await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
        ).json()
        # The rows are committed first: the image is gone even though its file is not yet.
        assert (await client.delete(body["delete_url"])).status_code == 204
        assert (await client.get(f"/api/v1/images/{body['id']}")).status_code == 404
        assert (await client.get(body["url"])).status_code == 404
    [left] = [p for p in _object_files(settings) if "originals" in p.parts]
    resources = await open_resources(settings)
    try:
        report = await reconcile(resources, dry_run=False)
    finally:
        await close_resources(resources)
    assert report.objects_without_row == [
        left.relative_to(settings.data_dir / "objects").as_posix()
    ]
    assert not [p for p in _object_files(settings) if "originals" in p.parts]


class _UploadWhileRemoving(LocalStorage):
    """Local storage that, as the original object is about to go, lets an upload of the
    same bytes run (for a while) before it removes it: the race where an upload claims
    the content again between the delete's commit and the removal of its objects."""

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        super().__init__(root, tmp_dir)
        self.racer: Callable[[], Awaitable[httpx.Response]] | None = None
        self.raced: asyncio.Task[httpx.Response] | None = None

    async def delete(self, key: str) -> None:
        if self.racer is not None and key.startswith("originals/"):
            self.raced = asyncio.ensure_future(self.racer())
            self.racer = None
            # Either the upload completes (then its object must survive) or it waits for
            # the delete's hold on the content (then it must not answer 201 without one).
            await asyncio.wait({self.raced}, timeout=3)
        await super().delete(key)


async def _assert_race_kept_the_upload(
    client: httpx.AsyncClient,
    storage: _UploadWhileRemoving,
    upload: Callable[[], Awaitable[httpx.Response]],
    data: bytes,
) -> None:
    """The raced upload got 201 and its file is served, or it was asked to retry (503,
    "the upload raced a delete") and a retry is accepted and served: never 201 without
    a file."""
    assert storage.raced is not None
    raced = await storage.raced
    assert raced.status_code in (201, 503), raced.text
    if raced.status_code == 503:
        raced = await upload()
        assert raced.status_code == 201
    served = await client.get(raced.json()["url"])
    assert served.status_code == 200
    assert served.content == data


async def test_an_upload_racing_the_removal_never_loses_its_object(settings: Settings) -> None:
    storage = _UploadWhileRemoving(settings.data_dir / "objects", settings.tmp_dir)
    await storage.start()
    data = images.png()
    async with app_client(settings, storage=storage) as client:

        async def upload() -> httpx.Response:
            return await flows.upload(client, data)

        body = (await upload()).json()
        storage.racer = upload
        assert (await client.delete(body["delete_url"])).status_code == 204
        await _assert_race_kept_the_upload(client, storage, upload, data)


async def test_an_upload_racing_reconcile_never_loses_its_object(settings: Settings) -> None:
    """Reconcile removes an object without a row the same way: an upload of the same
    bytes that claims them meanwhile keeps its object (or is asked to retry)."""
    storage = _UploadWhileRemoving(settings.data_dir / "objects", settings.tmp_dir)
    await storage.start()
    data = images.png()
    # An orphan: the object of these bytes is stored, but no row refers to it.
    await storage.put_bytes(object_key(hashlib.sha256(data).hexdigest()), data, "image/png")
    async with app_client(settings, storage=storage) as client:

        async def upload() -> httpx.Response:
            return await flows.upload(client, data)

        storage.racer = upload
        resources = await open_resources(settings, storage)
        try:
            report = await reconcile(resources, dry_run=False)
        finally:
            await close_resources(resources)
        assert len(report.objects_without_row) == 1
        await _assert_race_kept_the_upload(client, storage, upload, data)
