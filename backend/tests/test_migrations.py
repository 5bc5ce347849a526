"""The schema Alembic builds is the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.models import Base
from app.models.image import UNMODELLED_SEARCH_OBJECTS

pytestmark = pytest.mark.anyio


def _modelled(name: str | None, _type: str, _parents: object) -> bool:
    return name not in UNMODELLED_SEARCH_OBJECTS


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": _modelled}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(settings: Settings) -> None:
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
