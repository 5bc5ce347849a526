"""Fuzz every route against the OpenAPI document with Schemathesis.

A real `chitram serve` on SQLite answers Schemathesis' four phases (the document's
examples, boundary coverage, random fuzzing, and stateful sequences over the links it
infers, e.g. upload then read, file, thumbnail and delete) with every check enabled:
no 5xx, only documented statuses, content types and headers, bodies matching their
schemas, schema-invalid input refused with 4xx, 405 with a correct `Allow`, auth
actually enforced. Seeded and bounded, so a run takes well under a minute.

Schema-valid requests that the server may still refuse for reasons no JSON Schema can
express are listed per route below (random bytes are not an image, an opaque cursor was
not issued by us, a key name with control characters, a reused Idempotency-Key)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import TEST_JWT_SECRET
from tests.support.server import live_server

ST = str(Path(sys.executable).parent / "st")
SEED = 20261202
MAX_EXAMPLES = 12  # per route and phase
STATEFUL_SCENARIOS = 40

# Statuses a schema-valid request may get, beyond Schemathesis' defaults (2xx, 3xx,
# 401, 403, 404, 409, 429, 5xx, and 5xx is caught by not_a_server_error anyway).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
REFUSALS = {
    # An opaque cursor is ours only when we issued it; tags are letters, digits, space,
    # "-" and "_" of any script, which a JSON Schema pattern cannot say portably.
    "/api/v1/images": ["400", "422"],
    "/api/v1/tags": ["422"],
    "/api/v1/albums": ["400"],
    # A cursor as above; a cover that is not an image of the album.
    "/api/v1/albums/{album_id}": ["400", "422"],
    # An expiry in the past, tags with other characters (as above).
    "/api/v1/images/{image_id}": ["422"],
    # Random bytes are not an image (415), an empty part is refused (400), a reused key
    # with another body is refused (422), the pixel or quota budget (413).
    "/api/v1/images/upload": ["400", "413", "415", "422"],
    "/api/v1/images/batch": ["400", "413", "415", "422"],
    # Names must be printable: control characters cannot be excluded by a JSON pattern.
    "/api/v1/auth/api-keys": ["422"],
    # email-validator refuses some addresses JSON Schema's "email" format allows
    # (special-use domains, quoted local parts).
    "/api/v1/auth/register": ["422"],
    "/api/v1/auth/login": ["422"],
    "/api/v1/auth/token": ["422"],
}


def _config() -> str:
    lines = [
        "generation.database = 'none'",
        f"generation.max-examples = {MAX_EXAMPLES}",
        "[phases.stateful]",
        f"generation.max-examples = {STATEFUL_SCENARIOS}",
    ]
    for path, extra in REFUSALS.items():
        statuses = ", ".join(f'"{status}"' for status in [*ACCEPTED, *extra])
        lines += [
            "[[operations]]",
            f'include-path = "{path}"',
            f"checks.positive_data_acceptance.expected-statuses = [{statuses}]",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    high = "1000000/minute"
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        # Limits stay on, so their headers are checked too, but never bite.
        "RATE_LIMIT_UPLOAD": high,
        "RATE_LIMIT_READ": high,
        "RATE_LIMIT_AUTH": high,
        "LOGIN_MAX_FAILURES": "1000000",
        "LOG_LEVEL": "WARNING",
    }


def test_every_route_conforms_to_the_openapi_document(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config())
    with live_server(server_env, tmp_path) as server:
        registered = httpx.post(
            f"{server.url}/api/v1/auth/register",
            json={"email": "fuzz@example.com", "password": "fuzzing password"},
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        result = subprocess.run(
            [
                ST,
                "--config-file",
                str(config),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            check=False,
        )
        server_log = server.log()
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"{report}\n--- server log (tail) ---\n{server_log[-5000:]}"
    assert "Stateful" in report  # the stateful phase ran
