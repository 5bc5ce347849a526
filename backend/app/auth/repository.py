"""SQL for users and API keys; every query about someone's things is scoped to them here.

Reads take an `AsyncSession`; writes are plain functions of a `Connection`, run inside
one `Database.write` unit of work (see app.images.repository)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiKey, Image, User, WebSession

# last_used_at is written at most this often per key: a write per request would make
# every API-key read a write (and SQLite has one writer).
LAST_USED_RESOLUTION = timedelta(minutes=1)

# ---- reads ------------------------------------------------------------------------------


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def user_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    result = await session.execute(select(User.id).where(User.id == user_id))
    return result.first() is not None


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def count_images(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(select(func.count()).where(Image.owner_id == user_id))
    return int(result.scalar_one())


async def find_api_key(
    session: AsyncSession, digest: str
) -> Row[uuid.UUID, uuid.UUID, datetime | None] | None:
    """(key id, user id, last used) of the live key with this digest."""
    result = await session.execute(
        select(ApiKey.id, ApiKey.user_id, ApiKey.last_used_at).where(
            ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
        )
    )
    return result.first()


async def list_api_keys(session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    """The user's live keys, newest first."""
    result = await session.execute(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return list(result.scalars())


async def storage_usage(
    session: AsyncSession, user_id: uuid.UUID, default_quota: int
) -> tuple[int, int]:
    """(bytes used, quota) of the user now; the write checks again (`charge_storage`)."""
    used, quota = (await session.execute(_usage(user_id, default_quota))).one()
    return int(used), int(quota)


async def session_user(session: AsyncSession, digest: str, now: datetime) -> uuid.UUID | None:
    """The user of the live web session with this digest."""
    result = await session.execute(
        select(WebSession.user_id).where(WebSession.id == digest, WebSession.expires_at > now)
    )
    return result.scalar_one_or_none()


# ---- writes (inside Database.write) -----------------------------------------------------


def insert_user(connection: Connection, user: User) -> None:
    """Insert a new account; IntegrityError when the email is taken."""
    values = {column.key: getattr(user, column.key) for column in User.__table__.columns}
    connection.execute(insert(User).values(**values))


def insert_api_key(connection: Connection, key: ApiKey) -> None:
    values = {column.key: getattr(key, column.key) for column in ApiKey.__table__.columns}
    connection.execute(insert(ApiKey).values(**values))


def count_live_api_keys(connection: Connection, user_id: uuid.UUID) -> int:
    result = connection.execute(
        select(func.count()).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    )
    return int(result.scalar_one())


def revoke_api_key(
    connection: Connection, key_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> bool:
    """Revoke the user's live key; False when they have no such key (another's included)."""
    result = connection.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


def touch_api_key(connection: Connection, key_id: uuid.UUID, now: datetime) -> None:
    connection.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


def charge_storage(
    connection: Connection, user_id: uuid.UUID, size: int, default_quota: int
) -> bool:
    """Add `size` bytes to the user's usage if they fit in the quota; False if not.

    One conditional UPDATE: concurrent uploads of one user serialise on the row, so the
    quota holds exactly however many arrive at once."""
    result = connection.execute(
        update(User)
        .where(User.id == user_id, _fits(size, default_quota))
        .values(storage_used=User.storage_used + size)
    )
    return bool(result.rowcount)


def usage(connection: Connection, user_id: uuid.UUID, default_quota: int) -> tuple[int, int]:
    used, quota = connection.execute(_usage(user_id, default_quota)).one()
    return int(used), int(quota)


def refund_storage(connection: Connection, user_id: uuid.UUID, size: int) -> None:
    connection.execute(
        update(User).where(User.id == user_id).values(storage_used=User.storage_used - size)
    )


def _usage(user_id: uuid.UUID, default_quota: int) -> Select[int, int]:
    quota = func.coalesce(User.storage_quota, default_quota)
    return select(User.storage_used, quota).where(User.id == user_id)


def _fits(size: int, default_quota: int) -> ColumnElement[bool]:
    return User.storage_used + size <= func.coalesce(User.storage_quota, default_quota)


def insert_web_session(
    connection: Connection, digest: str, user_id: uuid.UUID, now: datetime, expires_at: datetime
) -> None:
    """Start a session, and forget this user's expired ones while we are here."""
    connection.execute(
        delete(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at <= now)
    )
    connection.execute(
        insert(WebSession).values(id=digest, user_id=user_id, created_at=now, expires_at=expires_at)
    )


def delete_web_session(connection: Connection, digest: str) -> None:
    connection.execute(delete(WebSession).where(WebSession.id == digest))
