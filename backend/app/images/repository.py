"""SQL for images, blobs and idempotency records; every query lives here.

Reads are async and take an `AsyncSession`. Writes are plain functions of a
`Connection`: they run inside one `Database.write` unit of work, which holds the write
lock (SQLite) or the row locks (PostgreSQL) for exactly that unit.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, Row, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Blob, IdempotencyRecord, Image
from app.models.base import utcnow

# ---- reads ------------------------------------------------------------------------------


async def get_image(session: AsyncSession, image_id: uuid.UUID) -> Image | None:
    return await session.get(Image, image_id)


async def get_idempotent_response(
    session: AsyncSession, key_hash: str, not_before: datetime
) -> str | None:
    result = await session.execute(
        select(IdempotencyRecord.response_json).where(
            IdempotencyRecord.key_hash == key_hash, IdempotencyRecord.created_at >= not_before
        )
    )
    return result.scalar_one_or_none()


async def all_blob_keys(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Blob.sha256))).scalars())


async def orphan_blob_rows(session: AsyncSession) -> list[str]:
    """Blob rows that no image refers to (left by a crash between steps)."""
    referenced = select(Image.blob_sha256).distinct()
    result = await session.execute(select(Blob.sha256).where(Blob.sha256.not_in(referenced)))
    return list(result.scalars())


# ---- writes (inside Database.write) -----------------------------------------------------


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
    lock_blob(connection, sha256)
    return False


def lock_blob(connection: Connection, sha256: str) -> bool:
    """Lock the blob row until the unit ends; False when there is none."""
    locked = connection.execute(select(Blob.sha256).where(Blob.sha256 == sha256).with_for_update())
    return locked.first() is not None


def count_blob_references(connection: Connection, sha256: str) -> int:
    result = connection.execute(select(func.count()).where(Image.blob_sha256 == sha256))
    return int(result.scalar_one())


def delete_blob(connection: Connection, sha256: str) -> None:
    connection.execute(delete(Blob).where(Blob.sha256 == sha256))


def insert_image(connection: Connection, image: Image) -> None:
    """Insert a new row with one Core statement (no unit-of-work flush on the hot path)."""
    values = {column.key: getattr(image, column.key) for column in Image.__table__.columns}
    connection.execute(insert(Image).values(**values))


def lock_image(connection: Connection, image_id: uuid.UUID) -> Row[str, str | None] | None:
    """The image's blob and delete-token digest, its row locked until the unit ends."""
    result = connection.execute(
        select(Image.blob_sha256, Image.delete_token_hash)
        .where(Image.id == image_id)
        .with_for_update()
    )
    return result.first()


def delete_image(connection: Connection, image_id: uuid.UUID) -> None:
    connection.execute(delete(Image).where(Image.id == image_id))


def delete_images_of_blob(connection: Connection, sha256: str) -> list[str]:
    """Remove every image stored as `sha256`; their ids."""
    deleted = connection.execute(
        delete(Image).where(Image.blob_sha256 == sha256).returning(Image.id)
    )
    return [str(image_id) for image_id in deleted.scalars()]


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


def purge_idempotency(connection: Connection, older_than: datetime) -> int:
    result = connection.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < older_than)
    )
    return int(result.rowcount)
