"""Bad settings are reported by name, never by value.

pydantic's own message quotes its input, and for a whole-model check that input is every
setting: a weak JWT_SECRET in production used to be echoed to the console, together
with URLs carrying passwords and the S3 secret key."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from app.config import Settings, SettingsError
from app.main import create_app_from_env
from tests.support.server import chitram

SECRETS = {
    "JWT_SECRET": "jwt-SECRET-1234",
    "DATABASE_URL": "postgresql+asyncpg://chitram:DB-PASSWORD-5678@127.0.0.1:1/chitram",
    "REDIS_URL": "redis://:REDIS-PASSWORD-9012@127.0.0.1:1/0",
    "DATABASE_READ_URLS": "postgresql+asyncpg://chitram:REPLICA-PASSWORD-7890@127.0.0.1:1/c",
    "S3_SECRET_KEY": "S3-SECRET-3456",
}
SECRET_PARTS = (
    "SECRET-1234",
    "DB-PASSWORD-5678",
    "REDIS-PASSWORD-9012",
    "REPLICA-PASSWORD-7890",
    "S3-SECRET-3456",
)
# Each is refused by a whole-model check, whose input is every setting.
BAD = {
    "weak JWT secret in production": ({"ENVIRONMENT": "production"}, "JWT_SECRET"),
    "replicas without Redis": (
        {"ENVIRONMENT": "development", "REDIS_URL": ""},
        "DATABASE_READ_URLS",
    ),
}


def _assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "0"]])
@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_the_commands_name_bad_settings_without_their_values(
    tmp_path: Path, command: list[str], case: tuple[dict[str, str], str]
) -> None:
    changes, named = case
    env = {**SECRETS, "DATA_DIR": str(tmp_path), **changes}
    result = chitram(*command, env=env)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    _assert_no_secret(result.stdout + result.stderr)


def test_the_server_factory_raises_an_error_without_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What uvicorn's workers call: the traceback they log quotes no value either."""
    for name, value in {**SECRETS, "DATA_DIR": str(tmp_path), "ENVIRONMENT": "production"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        create_app_from_env()
    assert "JWT_SECRET" in str(raised.value)
    _assert_no_secret("".join(traceback.format_exception(raised.value)))


def test_settings_do_not_show_secrets_in_their_repr(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        jwt_secret=SECRETS["JWT_SECRET"] * 3,
        database_url=SECRETS["DATABASE_URL"],
        redis_url=SECRETS["REDIS_URL"],
        database_read_urls=(SECRETS["DATABASE_READ_URLS"],),
        s3_secret_key=SECRETS["S3_SECRET_KEY"],
    )
    _assert_no_secret(repr(settings))
    _assert_no_secret(str(settings))
