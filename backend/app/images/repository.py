"""SQL for images, blobs and idempotency records; every query lives here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Blob, IdempotencyRecord, Image
from app.models.base import utcnow


async def get_image(session: AsyncSession, image_id: uuid.UUID) -> Image | None:
    return await session.get(Image, image_id)


async def get_image_for_update(session: AsyncSession, image_id: uuid.UUID) -> Image | None:
    result = await session.execute(select(Image).where(Image.id == image_id).with_for_update())
    return result.scalar_one_or_none()


def claim_blob(connection: Connection, sha256: str, size: int, content_type: str) -> bool:
    """Insert the blob row or lock the existing one; True when it is new.

    Holding this row lock serialises uploads and deletes of the same content, so a
    delete can never remove an object that a concurrent upload is about to reference.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    inserted = connection.execute(
        dialect.insert(Blob)
        .values(sha256=sha256, size=size, content_type=content_type, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[Blob.sha256])
        .returning(Blob.sha256)
    )
    if inserted.first() is not None:
        return True
    connection.execute(select(Blob.sha256).where(Blob.sha256 == sha256).with_for_update())
    return False


async def lock_blob(session: AsyncSession, sha256: str) -> None:
    await session.execute(select(Blob.sha256).where(Blob.sha256 == sha256).with_for_update())


async def count_blob_references(session: AsyncSession, sha256: str) -> int:
    result = await session.execute(select(func.count()).where(Image.blob_sha256 == sha256))
    return int(result.scalar_one())


async def delete_blob(session: AsyncSession, sha256: str) -> None:
    await session.execute(delete(Blob).where(Blob.sha256 == sha256))


def insert_image(connection: Connection, image: Image) -> None:
    """Insert a new row with one Core statement (no unit-of-work flush on the hot path)."""
    values = {column.key: getattr(image, column.key) for column in Image.__table__.columns}
    connection.execute(insert(Image).values(**values))


async def delete_image(session: AsyncSession, image: Image) -> None:
    await session.delete(image)
    await session.flush()


async def get_idempotent_response(
    session: AsyncSession, key_hash: str, not_before: datetime
) -> str | None:
    result = await session.execute(
        select(IdempotencyRecord.response_json).where(
            IdempotencyRecord.key_hash == key_hash, IdempotencyRecord.created_at >= not_before
        )
    )
    return result.scalar_one_or_none()


def save_idempotent_response(
    connection: Connection, key_hash: str, body: str, not_before: datetime
) -> None:
    """Store the response, replacing an expired record under the same key.

    A live record makes the insert fail with IntegrityError: a concurrent twin won."""
    connection.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.key_hash == key_hash, IdempotencyRecord.created_at < not_before
        )
    )
    connection.execute(
        insert(IdempotencyRecord).values(key_hash=key_hash, response_json=body, created_at=utcnow())
    )


async def purge_idempotency(session: AsyncSession, older_than: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < older_than)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def all_blob_keys(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Blob.sha256))).scalars())


async def orphan_blob_rows(session: AsyncSession) -> list[str]:
    """Blob rows that no image refers to (left by a crash between steps)."""
    referenced = select(Image.blob_sha256).distinct()
    result = await session.execute(select(Blob.sha256).where(Blob.sha256.not_in(referenced)))
    return list(result.scalars())


async def images_of_blob(session: AsyncSession, sha256: str) -> list[Image]:
    return list((await session.execute(select(Image).where(Image.blob_sha256 == sha256))).scalars())


async def blob_exists_locked(session: AsyncSession, sha256: str) -> bool:
    result = await session.execute(
        select(Blob.sha256).where(Blob.sha256 == sha256).with_for_update()
    )
    return result.first() is not None
