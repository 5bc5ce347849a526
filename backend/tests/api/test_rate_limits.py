"""Rate limits: per caller, the IETF headers, trusted proxies, Redis across processes."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from app.config import Settings
from tests.support import accounts, flows
from tests.support.app import app_client
from tests.support.server import free_port

pytestmark = pytest.mark.anyio
LIMITS = {
    "rate_limit_upload": "2/minute",
    "rate_limit_read": "3/minute",
    "rate_limit_auth": "3/minute",
}


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(LIMITS)


async def test_anonymous_uploads_are_limited_per_ip_with_the_headers(
    client: httpx.AsyncClient,
) -> None:
    first, second, third = [await flows.upload(client) for _ in range(3)]
    assert (first.status_code, second.status_code, third.status_code) == (201, 201, 429)
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert second.headers["ratelimit-remaining"] == "0"
    assert 0 < int(first.headers["ratelimit-reset"]) <= 60
    assert third.json()["error"]["code"] == "RATE_LIMITED"
    assert third.json()["error"]["request_id"] == third.headers["x-request-id"]
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert third.headers["ratelimit-remaining"] == "0"
    assert "retry-after" not in first.headers


async def test_reads_have_their_own_limit_and_unlimited_routes_no_headers(
    client: httpx.AsyncClient,
) -> None:
    body = (await flows.upload(client)).json()
    reads = [await client.get(f"/api/v1/images/{body['id']}") for _ in range(4)]
    assert [r.status_code for r in reads] == [200, 200, 200, 429]
    assert reads[0].headers["ratelimit-limit"] == "3"
    assert (await client.get(body["url"])).status_code == 429  # same read budget
    assert (await flows.upload(client)).status_code == 201  # uploads count apart
    health = await client.get("/health")
    assert "ratelimit-limit" not in health.headers
    deleted = await client.delete(body["delete_url"])
    assert deleted.status_code == 204


async def test_users_are_limited_per_user_not_per_token_or_address(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)
    for _ in range(2):
        assert (await flows.upload(client)).status_code == 201
    assert (await flows.upload(client)).status_code == 429  # this address is spent
    # Two tokens of one user share the user's bucket, whatever the address.
    login = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": accounts.PASSWORD}
    )
    second = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await flows.upload(client, headers=account.headers)).status_code == 201
    assert (await flows.upload(client, headers=second)).status_code == 201
    refused = await flows.upload(client, headers=account.headers)
    assert refused.status_code == 429
    assert refused.headers["ratelimit-limit"] == "2"
    other = await flows.register(client)
    assert (await flows.upload(client, headers=other.headers)).status_code == 201


async def test_all_api_keys_and_tokens_of_a_user_share_one_bucket(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)
    first = {"X-API-Key": await flows.new_api_key(client, account, "one")}
    second = {"X-API-Key": await flows.new_api_key(client, account, "two")}
    assert [(await flows.upload(client, headers=first)).status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]
    # A fresh key is not a fresh budget: keys and tokens spend the user's.
    assert (await flows.upload(client, headers=second)).status_code == 429
    assert (await flows.upload(client, headers=account.headers)).status_code == 429
    other = await flows.register(client)
    assert (await flows.upload(client, headers=other.headers)).status_code == 201


def _forged(kind: str, settings: Settings) -> dict[str, str]:
    if kind == "unknown-api-key":
        return {"X-API-Key": "chk_" + "A" * 43}
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "iat": now, "jti": "j"}
    token = {
        "garbage": "not-a-token",
        "other-secret": jwt.encode({**claims, "exp": now + 60}, "x" * 40, "HS256"),
        "alg-none": jwt.encode({**claims, "exp": now + 60}, None, "none"),
        "expired": jwt.encode({**claims, "exp": now - 60}, settings.jwt_secret, "HS256"),
    }[kind]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "kind", ["garbage", "other-secret", "alg-none", "expired", "unknown-api-key"]
)
async def test_credentials_that_do_not_verify_are_refused_and_counted_per_address(
    client: httpx.AsyncClient, settings: Settings, kind: str
) -> None:
    # Never a fresh bucket, never anonymous: 401, and guessing is limited per address.
    statuses = [
        (await flows.upload(client, headers=_forged(kind, settings))).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    assert (await flows.upload(client)).status_code == 201  # the upload budget is untouched


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(settings: Settings) -> None:
    # Loopback is trusted by default: the proxy's X-Forwarded-For names the caller.
    async with app_client(settings) as client:
        for address in ("198.51.100.1", "198.51.100.2"):
            for _ in range(2):
                response = await flows.upload(client, ip=address)
                assert response.status_code == 201
        assert (await flows.upload(client, ip="198.51.100.1")).status_code == 429
    # A peer that is not a trusted proxy cannot pick its bucket with the header.
    async with app_client(settings, peer="203.0.113.9") as client:
        statuses = [
            (await flows.upload(client, ip=f"198.51.100.{i}")).status_code for i in range(3)
        ]
        assert statuses == [201, 201, 429]


async def test_limits_can_be_turned_off(settings: Settings) -> None:
    async with app_client(settings.model_copy(update={"rate_limit_enabled": False})) as client:
        responses = [await flows.upload(client) for _ in range(4)]
        assert {r.status_code for r in responses} == {201}
        assert "ratelimit-limit" not in responses[0].headers


async def test_with_redis_a_limit_holds_across_processes(
    settings: Settings, redis_url: str, queue_name: str
) -> None:
    shared = settings.model_copy(
        update={"redis_url": redis_url, "queue_name": queue_name, "redis_prefix": queue_name}
    )
    async with app_client(shared) as one, app_client(shared) as other:
        assert (await flows.upload(one)).status_code == 201
        assert (await flows.upload(other)).status_code == 201
        assert (await flows.upload(one)).status_code == 429
        assert (await flows.upload(other)).status_code == 429


async def test_without_redis_limits_fall_back_to_this_process(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "queue_name": "nowhere"}
    )
    async with app_client(unreachable) as client:
        statuses = [(await flows.upload(client)).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        metrics = (await client.get("/metrics")).text
        assert "chitram_rate_limit_fallback 1.0" in metrics
        assert 'chitram_rate_limited_total{limit="upload"}' in metrics
