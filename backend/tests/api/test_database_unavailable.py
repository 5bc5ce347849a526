"""Every way the database can be unavailable answers 503 with Retry-After (a
misconfigured deployment is an outage to report, not a bug to hide behind a 500).

A live `chitram serve` is pointed at a PostgreSQL database that does not exist, a role
that does not exist, and a SQLite file that cannot be opened. Before the fix, asyncpg's
InvalidCatalogNameError and InvalidAuthorizationSpecificationError escaped as 500s, and
the app's exception reset the keep-alive connection."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN
from tests.support.images import png
from tests.support.server import live_server
from tests.support.services import service_missing


def _pg_url(*, user: str | None = None, database: str | None = None) -> str:
    """The test server's DSN with another role or database, for SQLAlchemy's asyncpg."""
    import asyncio

    import asyncpg

    async def reachable() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(reachable())
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing(f"PostgreSQL at {PG_ADMIN_DSN}: {exc}")
    dsn = urlsplit(PG_ADMIN_DSN)
    netloc = dsn.netloc if user is None else f"{user}@{dsn.hostname}:{dsn.port or 5432}"
    path = dsn.path if database is None else f"/{database}"
    return urlunsplit(("postgresql+asyncpg", netloc, path, dsn.query, ""))


def _missing_database() -> str:
    return _pg_url(database=f"chitram_missing_{uuid.uuid4().hex[:12]}")


def _missing_role() -> str:
    return _pg_url(user=f"chitram_nobody_{uuid.uuid4().hex[:12]}")


def _unopenable_sqlite() -> str:
    return "sqlite+aiosqlite:////nonexistent-chitram-dir/cannot/open.db"


@pytest.mark.parametrize(
    "database_url",
    [
        pytest.param(_missing_database, id="postgres-missing-database"),
        pytest.param(_missing_role, id="postgres-missing-role"),
        pytest.param(_unopenable_sqlite, id="sqlite-unopenable"),
    ],
)
def test_an_unavailable_database_answers_503_on_every_route(
    database_url: object, tmp_path: Path
) -> None:
    assert callable(database_url)
    env = {
        "DATABASE_URL": str(database_url()),
        "DATA_DIR": str(tmp_path / "data"),
        "ENVIRONMENT": "development",
    }
    api_key = "chk_" + secrets.token_urlsafe(32)
    calls: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "/health", {}),
        ("GET", f"/api/v1/images/{uuid.uuid4()}", {}),
        ("GET", f"/api/v1/images/{uuid.uuid4()}/file", {}),
        (
            "POST",
            "/api/v1/auth/register",
            {"json": {"email": "new@example.com", "password": "long enough"}},
        ),
        (
            "POST",
            "/api/v1/auth/login",
            {"json": {"email": "new@example.com", "password": "long enough"}},
        ),
        ("GET", "/api/v1/auth/me", {"headers": {"X-API-Key": api_key}}),
        ("POST", "/api/v1/images/upload", {"files": {"file": ("a.png", png(), "image/png")}}),
        ("GET", f"/i/{uuid.uuid4()}", {"headers": {"Accept": "text/html"}}),  # a web page
    ]
    with (
        live_server(env, tmp_path, migrate=False, healthy=False) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for method, path, kwargs in calls:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 503, (method, path, response.text)
            if path.startswith("/api"):
                assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            if path != "/health":
                assert int(response.headers["Retry-After"]) > 0
            assert response.headers.get("connection") != "close"
        log = server.log()
    # Nothing escaped the app: uvicorn logs this (and drops the connection) when it does.
    assert "Exception in ASGI application" not in log
    assert '"status": 500' not in log
