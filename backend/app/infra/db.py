"""Database engines and units of work for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, Protocol, TypeVar

import anyio
import anyio.from_thread
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from app.errors import ServiceUnavailable
from app.infra import tracing
from app.infra.metrics import DATABASE_ERRORS


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


def _async_engine(url: str, connect_timeout: float | None) -> AsyncEngine:
    """PostgreSQL: reads and writes. SQLite: reads only (writes go through the sync writer)."""
    if not url.startswith("sqlite"):
        connect_args = {} if connect_timeout is None else {"timeout": connect_timeout}
        return create_async_engine(
            url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args
        )
    # SQLite readers run each statement in autocommit: one statement is consistent by
    # itself, and every BEGIN/ROLLBACK would be another thread hop through aiosqlite.
    engine = create_async_engine(url, pool_size=8, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


T = TypeVar("T")
P = ParamSpec("P")


class RunAsync(Protocol):
    """Calls an async function from inside a sync unit of work and returns its result."""

    def __call__(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T: ...


def _from_thread(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    async def call() -> T:
        return await fn(*args, **kwargs)

    return anyio.from_thread.run(call)


def _from_greenlet(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    return await_only(fn(*args, **kwargs))


def _sync_sqlite_writer(url: str) -> Engine:
    # One writer connection per process: SQLite has one write lock anyway, and queueing
    # for the connection is cheaper than spinning on SQLITE_BUSY.
    engine = create_engine(
        url.replace("sqlite+aiosqlite", "sqlite", 1), pool_size=1, max_overflow=0
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _begin_immediate)
    return engine


class Database:
    """Owns the engines; hands out read sessions and runs one-transaction writes."""

    def __init__(self, url: str, *, connect_timeout: float | None = None) -> None:
        self.url = url
        self.engine = _async_engine(url, connect_timeout)
        # SQLite writes run as one sync unit of work in one thread hop (see `write`).
        self._sync_writer = _sync_sqlite_writer(url) if url.startswith("sqlite") else None
        self._write_slot = anyio.CapacityLimiter(1)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        system = "sqlite" if url.startswith("sqlite") else "postgresql"
        tracing.instrument_engine(self.engine.sync_engine, system)
        if self._sync_writer is not None:
            tracing.instrument_engine(self._sync_writer, system)

    async def write(self, work: Callable[[Connection, RunAsync], T]) -> T:
        """Run `work(connection, run_async)` as one transaction: committed when it returns.

        On SQLite the whole unit runs in one thread hop on a sync connection: statement by
        statement through aiosqlite, each a hop of its own, the single write lock was held
        for many event-loop turns. On PostgreSQL it runs through `run_sync` on the async
        connection. `run_async` lets the work await storage calls while it holds the lock.
        """
        async with _unavailable_on_connection_error():
            if self._sync_writer is not None:
                return await anyio.to_thread.run_sync(
                    self._write_in_thread, work, limiter=self._write_slot
                )
            async with self.engine.begin() as connection:
                return await connection.run_sync(work, _from_greenlet)

    def _write_in_thread(self, work: Callable[[Connection, RunAsync], T]) -> T:
        assert self._sync_writer is not None
        with self._sync_writer.begin() as connection:
            return work(connection, _from_thread)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; nothing it does is committed."""
        async with _unavailable_on_connection_error(), self._reader() as session:
            yield session

    async def ping(self) -> float:
        """Round-trip a trivial query; return its latency in milliseconds."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def dispose(self) -> None:
        if self._sync_writer is not None:
            await anyio.to_thread.run_sync(self._sync_writer.dispose)
        await self.engine.dispose()


# SQLSTATE classes that say "the database cannot serve you now", not "your query is
# wrong": connection exceptions, an unknown or refused role, an unknown database, a server
# out of resources (too many connections, disk full), shutting down or starting up, and
# system errors.
UNAVAILABLE_SQLSTATES = ("08", "28", "3D", "53", "57P", "58")


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable or refuses this service (503),
    rather than a bug in a query (500)."""
    if isinstance(exc, OperationalError | OSError | ConnectionError | PoolTimeout):
        return True  # PoolTimeout: every pooled connection stayed busy (saturated)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(sqlstate, str) and sqlstate.upper().startswith(UNAVAILABLE_SQLSTATES)
    return False


@asynccontextmanager
async def _unavailable_on_connection_error() -> AsyncIterator[None]:
    try:
        yield
    except (DBAPIError, OSError, ConnectionError, PoolTimeout) as exc:
        if not is_unavailable(exc):
            raise
        DATABASE_ERRORS.inc()
        raise ServiceUnavailable("The database is unavailable") from exc
