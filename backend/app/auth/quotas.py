"""Storage quotas: what other domains (images, jobs, reconcile) may ask of accounts.

They call these functions, never `app.auth.repository`. Reads take an `AsyncSession`;
the rest run inside the caller's `Database.write` unit of work, so a charge or refund
commits (or not) with the rows it pays for."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository


class Usage(NamedTuple):
    """An account's bytes stored and the most it may store."""

    used: int
    quota: int

    def has_room(self, size: int) -> bool:
        return self.used + size <= self.quota


async def usage(session: AsyncSession, user_id: uuid.UUID, default_quota: int) -> Usage:
    """The user's usage now; a write checks again when it charges (`charge`)."""
    return Usage(*await repository.storage_usage(session, user_id, default_quota))


def charge(connection: Connection, user_id: uuid.UUID, size: int, default_quota: int) -> bool:
    """Count `size` bytes against the user's quota if they fit; False (nothing charged)
    if not. Concurrent charges of one user serialise on their row."""
    return repository.charge_storage(connection, user_id, size, default_quota)


def usage_in(connection: Connection, user_id: uuid.UUID, default_quota: int) -> Usage:
    """The user's usage as this unit of work sees it (e.g. to explain a refused charge)."""
    return Usage(*repository.usage(connection, user_id, default_quota))


def refund(connection: Connection, user_id: uuid.UUID, size: int) -> None:
    """Stop counting `size` bytes of the user's (deleted or lost) images."""
    repository.refund_storage(connection, user_id, size)
