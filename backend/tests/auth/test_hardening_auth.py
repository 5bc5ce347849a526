"""Lockout under concurrency, whose budget a request spends, and what an API
key may not do."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from tests.support import flows, images
from tests.support.accounts import PASSWORD
from tests.support.app import app_client, client_from

pytestmark = pytest.mark.anyio
AUTH = "/api/v1/auth"
GUESSES = 40
ATTACKER = "198.51.100.66"


@pytest.fixture
def database_kind() -> str:
    return "sqlite"  # the limiter is the subject here; see the API-key test for both


async def _guess(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        f"{AUTH}/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ATTACKER},
    )
    return response.status_code


def _lockout(settings: Settings, **update: object) -> Settings:
    # The per-address auth limit is not the subject: only the per-account lockout.
    return settings.model_copy(
        update={"login_max_failures": 5, "rate_limit_auth": "1000/minute", **update}
    )


# ---- lockout holds under concurrency -----------------------------------------------------


async def test_concurrent_guesses_are_counted_before_the_password_is_checked(
    settings: Settings,
) -> None:
    async with app_client(_lockout(settings)) as client:
        victim = await flows.register(client)
        statuses = await asyncio.gather(
            *(_guess(client, victim.email, f"wrong guess {i}") for i in range(GUESSES))
        )
        # Exactly LOGIN_MAX_FAILURES guesses were checked; every other one was refused
        # before its password was looked at.
        assert Counter(statuses) == {401: 5, 429: GUESSES - 5}
        assert await _guess(client, victim.email, PASSWORD) == 429  # locked, right or not


async def test_with_redis_the_lockout_holds_across_processes(
    settings: Settings, redis_url: str, queue_name: str
) -> None:
    shared = _lockout(settings, redis_url=redis_url, queue_name=queue_name, redis_prefix=queue_name)
    async with app_client(shared) as one, app_client(shared) as other:
        victim = await flows.register(one)
        statuses = await asyncio.gather(
            *(
                _guess(one if i % 2 else other, victim.email, f"wrong guess {i}")
                for i in range(GUESSES)
            )
        )
        assert Counter(statuses) == {401: 5, 429: GUESSES - 5}
        assert await _guess(one, victim.email, PASSWORD) == 429
        assert await _guess(other, victim.email, PASSWORD) == 429


async def test_a_right_password_within_the_budget_still_signs_in(settings: Settings) -> None:
    async with app_client(_lockout(settings)) as client:
        account = await flows.register(client)
        statuses = [await _guess(client, account.email, "wrong") for _ in range(4)]
        assert statuses == [401] * 4
        assert await _guess(client, account.email, PASSWORD) == 200  # the 5th attempt
        assert await _guess(client, account.email, "wrong") == 401  # and it cleared them


# ---- whose budget a request spends -------------------------------------------------------


async def test_credentials_riding_on_a_login_buy_no_fresh_budget(settings: Settings) -> None:
    strict = settings.model_copy(update={"rate_limit_auth": "3/minute", "login_max_failures": 100})
    async with app_client(strict) as client:
        account = await flows.register(client)  # from the client's own address
        keys = [await flows.new_api_key(client, account, f"k{i}") for i in range(4)]
        statuses = []
        for key in keys:
            response = await client.post(
                f"{AUTH}/login",
                json={"email": f"x{key[-6:]}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": ATTACKER, "X-API-Key": key},
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]  # one budget per address, keys or not
        token_form = await client.post(
            f"{AUTH}/token",
            data={"username": account.email, "password": PASSWORD},
            headers={"X-Forwarded-For": ATTACKER, **account.headers},
        )
        assert token_form.status_code == 429
        assert token_form.headers["ratelimit-limit"] == "3"


async def test_a_batch_counts_one_upload_per_file(settings: Settings) -> None:
    async with app_client(settings.model_copy(update={"rate_limit_upload": "3/minute"})) as client:
        files = [("files", (f"{i}.png", images.png(4 + i, 4))) for i in range(4)]
        batch = await client.post("/api/v1/images/batch", files=files)
        assert batch.status_code == 200
        results = batch.json()["results"]
        assert [r["status"] for r in results] == [201, 201, 201, 429]
        assert results[3]["error"]["code"] == "RATE_LIMITED"
        upload = await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
        assert upload.status_code == 429  # the batch spent the budget
        refused = await client.post("/api/v1/images/batch", files=files[:1])
        assert refused.status_code == 429


async def test_an_ipv4_mapped_address_shares_the_ipv4_bucket(settings: Settings) -> None:
    strict = settings.model_copy(update={"rate_limit_upload": "2/minute"})
    async with LifespanManager(create_app(strict)) as manager:

        async def upload(http: httpx.AsyncClient, **headers: str) -> int:
            return (await flows.upload(http, headers=headers)).status_code

        app = manager.app
        async with (
            client_from(app, "203.0.113.9") as v4,
            client_from(app, "::ffff:203.0.113.9") as mapped,
        ):
            assert [await upload(v4), await upload(v4)] == [201, 201]
            assert await upload(mapped) == 429  # a dual-stack socket's spelling of v4
        async with client_from(app, "127.0.0.1") as proxy:  # loopback: a trusted proxy
            forwarded = {"X-Forwarded-For": "::ffff:198.51.100.20"}
            assert [await upload(proxy, **forwarded) for _ in range(2)] == [201, 201]
            assert await upload(proxy, **{"X-Forwarded-For": "198.51.100.20"}) == 429
        # Loopback reached over a dual-stack socket is still the trusted proxy.
        async with client_from(app, "::ffff:127.0.0.1") as proxy:
            statuses = [
                await upload(proxy, **{"X-Forwarded-For": f"198.51.100.{30 + i}"}) for i in range(3)
            ]
            assert statuses == [201, 201, 201]  # each forwarded client its own bucket


async def test_web_pages_are_limited_as_reads(settings: Settings) -> None:
    strict = settings.model_copy(update={"rate_limit_read": "3/minute"})
    async with app_client(strict) as client:
        uploaded = await client.post(
            "/api/v1/images/upload", files={"file": ("a.png", images.png())}
        )
        image_id = uploaded.json()["id"]
        pages = [await client.get(f"/i/{image_id}") for _ in range(2)]
        assert [p.status_code for p in pages] == [200, 200]
        assert pages[0].headers["ratelimit-limit"] == "3"
        assert (await client.get("/gallery")).status_code == 303  # anonymous: to /login
        spent = await client.get(f"/i/{image_id}")
        assert spent.status_code == 429
        assert "retry-after" in spent.headers
        assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 429
        assert (await client.get("/gallery")).status_code == 429
        assert (await client.get("/login")).status_code == 200  # not a read of images


# ---- an API key cannot manage API keys ---------------------------------------------------


@pytest.mark.parametrize("database_kind", ["sqlite", "postgres"], indirect=False)
async def test_an_api_key_cannot_create_or_revoke_api_keys(
    client: httpx.AsyncClient, database_kind: str
) -> None:
    account = await flows.register(client)
    key = await flows.new_api_key(client, account, "ci")
    spare = (
        await client.post(f"{AUTH}/api-keys", json={"name": "spare"}, headers=account.headers)
    ).json()
    created = await client.post(
        f"{AUTH}/api-keys", json={"name": "minted"}, headers={"X-API-Key": key}
    )
    assert created.status_code == 403
    assert created.json()["error"]["code"] == "FORBIDDEN"
    assert "API key cannot create or revoke API keys" in created.json()["error"]["message"]
    revoked = await client.delete(f"{AUTH}/api-keys/{spare['id']}", headers={"X-API-Key": key})
    assert revoked.status_code == 403
    assert revoked.json()["error"]["code"] == "FORBIDDEN"
    listed = await client.get(f"{AUTH}/api-keys", headers=account.headers)
    assert sorted(k["name"] for k in listed.json()["items"]) == ["ci", "spare"]
    # The key still works for what keys are for; a token still manages keys.
    me = await client.get(f"{AUTH}/me", headers={"X-API-Key": key})
    assert me.status_code == 200
    gone = await client.delete(f"{AUTH}/api-keys/{spare['id']}", headers=account.headers)
    assert gone.status_code == 204
