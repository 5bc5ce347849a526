"""Login and register limits per account and per address, through the rate limiter."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings
from tests.support import flows
from tests.support.accounts import PASSWORD
from tests.support.app import app_client

pytestmark = pytest.mark.anyio
AUTH = "/api/v1/auth"


@pytest.fixture
def database_kind() -> str:
    return "sqlite"  # the limiter is the subject here, not the database


async def _login(
    client: httpx.AsyncClient, email: str, password: str, address: str = "198.51.100.7"
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address},  # loopback is a trusted proxy by default
    )


async def test_failed_logins_lock_the_account_not_the_others(settings: Settings) -> None:
    async with app_client(settings.model_copy(update={"login_max_failures": 3})) as client:
        victim, bystander = await flows.register(client), await flows.register(client)
        failures = [
            (await _login(client, victim.email, "wrong password")).status_code for _ in range(3)
        ]
        assert failures == [401, 401, 401]
        locked = await _login(client, victim.email, PASSWORD, address="203.0.113.50")
        assert locked.status_code == 429  # even with the right password, from anywhere
        assert locked.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(locked.headers["retry-after"]) <= 900
        assert locked.headers.get_list("ratelimit-limit") == ["3"]
        assert (await _login(client, bystander.email, PASSWORD)).status_code == 200
        # Unknown emails lock alike, so a 429 tells nobody whether an account exists.
        unknown = [
            (await _login(client, "ghost@example.com", "wrong password")).status_code
            for _ in range(4)
        ]
        assert unknown == [401, 401, 401, 429]


async def test_a_successful_login_clears_the_failures(settings: Settings) -> None:
    async with app_client(settings.model_copy(update={"login_max_failures": 3})) as client:
        account = await flows.register(client)
        statuses = []
        for password in ("bad one", "bad two", PASSWORD, "bad three", "bad four", PASSWORD):
            statuses.append((await _login(client, account.email, password)).status_code)
        assert statuses == [401, 401, 200, 401, 401, 200]


async def test_the_auth_routes_are_limited_per_address(settings: Settings) -> None:
    strict = settings.model_copy(update={"rate_limit_auth": "4/minute", "login_max_failures": 100})
    async with app_client(strict) as client:
        account = await flows.register(client)  # from the test client's own address
        statuses = [
            (await _login(client, f"user{i}@example.com", "wrong password")).status_code
            for i in range(5)
        ]
        assert statuses == [401, 401, 401, 401, 429]
        assert (
            await _login(client, account.email, PASSWORD, address="198.51.100.8")
        ).status_code == 200
        form = {"username": account.email, "password": PASSWORD}
        spent = await client.post(
            f"{AUTH}/token", data=form, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        assert spent.status_code == 429  # the token form shares the budget


async def test_registering_one_email_again_and_again_is_limited(settings: Settings) -> None:
    strict = settings.model_copy(update={"rate_limit_auth": "3/minute"})
    async with app_client(strict) as client:
        statuses = [
            (
                await client.post(
                    f"{AUTH}/register",
                    json={"email": "taken@example.com", "password": PASSWORD},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
            ).status_code
            for i in range(4)
        ]
        assert statuses == [201, 409, 409, 429]
