"""Database engines and units of work for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.errors import ServiceUnavailable


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level so that SQLAlchemy's "begin" event decides how
    # transactions start (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    # A write transaction takes SQLite's write lock up front, so it waits (busy_timeout)
    # instead of failing when it later upgrades from a stale read snapshot.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _make_engine(url: str, *, writer: bool) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    # One writer connection per process: SQLite has one write lock anyway, and queueing
    # in the pool is cheaper than spinning on SQLITE_BUSY.
    engine = create_async_engine(url, pool_size=1 if writer else 8, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    if writer:
        event.listen(engine.sync_engine, "begin", _begin_immediate)
    # Readers run each statement in autocommit: one statement is consistent by itself, and
    # every BEGIN/ROLLBACK is another thread hop through aiosqlite.
    return engine


class Database:
    """Owns the engines; hands out sessions for reads and for one-transaction writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.write_engine = _make_engine(url, writer=True)
        self.read_engine = _make_engine(url, writer=False) if self.is_sqlite else self.write_engine
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends, rolled back on error."""
        async with _unavailable_on_connection_error(), self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; nothing it does is committed."""
        async with _unavailable_on_connection_error(), self._reader() as session:
            yield session

    async def ping(self) -> float:
        """Round-trip a trivial query; return its latency in milliseconds."""
        started = time.perf_counter()
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


@asynccontextmanager
async def _unavailable_on_connection_error() -> AsyncIterator[None]:
    try:
        yield
    except (OperationalError, OSError, ConnectionError) as exc:
        raise ServiceUnavailable("The database is unavailable") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise ServiceUnavailable("The database is unavailable") from exc
        raise
