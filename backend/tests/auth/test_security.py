"""Hostile credentials: forged, expired and orphaned tokens, bad keys, IDOR, timing."""

from __future__ import annotations

import base64
import statistics
import time
import uuid

import anyio
import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from tests.support import flows, images
from tests.support.app import app_client

pytestmark = pytest.mark.anyio
ME = "/api/v1/auth/me"


def _error(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def _claims(subject: str, **changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": subject, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, **changes}


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = base64.urlsafe_b64decode(signature + "==")
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    return ".".join([header, payload, base64.urlsafe_b64encode(flipped).decode().rstrip("=")])


def _forged_payload(token: str, subject: str) -> str:
    header, _, signature = token.split(".")
    body = base64.urlsafe_b64encode(f'{{"sub":"{subject}","exp":9999999999}}'.encode())
    return ".".join([header, body.decode().rstrip("="), signature])


async def test_forged_tokens_are_refused_on_every_route(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await flows.register(client)
    victim = await flows.register(client)
    image = (
        await client.post("/api/v1/images/upload", files={"file": ("a.png", images.png())})
    ).json()
    forged = {
        "tampered signature": _tampered(account.token),
        "payload swapped to another user": _forged_payload(account.token, victim.id),
        "alg none": jwt.encode(_claims(account.id), None, algorithm="none"),
        "another secret": jwt.encode(_claims(account.id), "k" * 64, algorithm="HS256"),
        # Algorithm confusion: right secret, but not the pinned algorithm.
        "HS512 with the right secret": jwt.encode(
            _claims(account.id), settings.jwt_secret, algorithm="HS512"
        ),
        "no jti": jwt.encode(
            {k: v for k, v in _claims(account.id).items() if k != "jti"}, settings.jwt_secret
        ),
        "subject not a user id": jwt.encode(_claims("admin"), settings.jwt_secret),
        "not a jwt": "hello",
    }
    routes = [
        ("GET", ME),
        ("GET", f"/api/v1/images/{image['id']}"),  # optional auth: never downgraded
        ("GET", image["url"]),
        ("POST", "/api/v1/images/upload"),
        ("DELETE", image["delete_url"]),
        ("GET", "/health"),
    ]
    for name, token in forged.items():
        for method, url in routes:
            response = await client.request(
                method, url, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, (name, url)
            assert _error(response) == "UNAUTHORIZED", (name, url)
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get(f"/api/v1/images/{image['id']}")).status_code == 200  # not deleted


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Many failures from one address on purpose: keep the address limit out of the way.
    return {"rate_limit_auth": "1000/minute", "login_max_failures": 1000}


async def test_expired_tokens_say_so(client: httpx.AsyncClient, settings: Settings) -> None:
    account = await flows.register(client)
    expired = jwt.encode(
        _claims(account.id, iat=int(time.time()) - 7200, exp=int(time.time()) - 60),
        settings.jwt_secret,
    )
    for url in (ME, "/api/v1/images/upload"):
        response = await client.request(
            "GET" if url == ME else "POST", url, headers={"Authorization": f"Bearer {expired}"}
        )
        assert response.status_code == 401
        assert _error(response) == "TOKEN_EXPIRED"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_fractional_expiry_is_honoured(settings: Settings) -> None:
    short = settings.model_copy(update={"jwt_expire_minutes": 0.02})  # 1.2 seconds
    async with app_client(short) as client:
        account = await flows.register(client)
        assert (await client.get(ME, headers=account.headers)).status_code == 200
        await anyio.sleep(2.2)
        response = await client.get(ME, headers=account.headers)
        assert _error(response) == "TOKEN_EXPIRED"


async def test_a_token_for_a_deleted_user_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await flows.register(client)
    key = await flows.new_api_key(client, account)
    engine = create_async_engine(settings.resolved_database_url)
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM users WHERE email = :email"), {"email": account.email}
        )
    await engine.dispose()
    for headers in (account.headers, {"X-API-Key": key}):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401
        assert _error(response) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "chk_" + "A" * 43},  # well-formed, unknown
        {"X-API-Key": "nonsense"},
        {"X-API-Key": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
async def test_bad_api_keys_and_schemes_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, url in (("GET", ME), ("POST", "/api/v1/images/upload"), ("GET", "/health")):
        response = await client.request(method, url, headers=headers)
        assert response.status_code == 401, (headers, url)


async def test_a_token_and_a_key_together_are_refused(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    key = await flows.new_api_key(client, account)
    response = await client.get(ME, headers={**account.headers, "X-API-Key": key})
    assert response.status_code == 401


async def test_no_route_lets_one_user_act_on_anothers_things(client: httpx.AsyncClient) -> None:
    owner, intruder = await flows.register(client), await flows.register(client)
    owner_key = await flows.new_api_key(client, owner)
    owner_key_id = (await client.get("/api/v1/auth/api-keys", headers=owner.headers)).json()[
        "items"
    ][0]["id"]
    intruder_key = {"X-API-Key": await flows.new_api_key(client, intruder)}
    image = (
        await client.post(
            "/api/v1/images/upload", files={"file": ("o.png", images.png())}, headers=owner.headers
        )
    ).json()
    path = f"/api/v1/images/{image['id']}"
    for credentials in (intruder.headers, intruder_key):
        # Images are public by link (contract section 3): reading them is not an IDOR.
        assert (await client.get(path, headers=credentials)).status_code == 200
        deleted = await client.delete(path, headers=credentials)
        assert (deleted.status_code, _error(deleted)) == (403, "FORBIDDEN")
        token_param = await client.delete(f"{path}?delete_token=x", headers=credentials)
        assert token_param.status_code == 403
        listed = (await client.get("/api/v1/images", headers=credentials)).json()["items"]
        assert image["id"] not in [item["id"] for item in listed]
        keys = (await client.get("/api/v1/auth/api-keys", headers=credentials)).json()["items"]
        assert owner_key_id not in [k["id"] for k in keys]
        revoked = await client.delete(f"/api/v1/auth/api-keys/{owner_key_id}", headers=credentials)
        # Not found for a token; an API key may revoke no key at all (a leaked key must
        # not revoke its owner's other keys).
        assert revoked.status_code == (403 if "X-API-Key" in credentials else 404)
        me = (await client.get(ME, headers=credentials)).json()
        assert me["id"] == intruder.id
    assert (await client.get(ME, headers={"X-API-Key": owner_key})).status_code == 200
    assert (await client.get(path)).status_code == 200
    assert (await client.delete(path, headers={"X-API-Key": owner_key})).status_code == 204


async def test_unknown_email_and_wrong_password_take_similar_time(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)

    async def timed(email: str) -> float:
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "not the password"}
        )
        assert response.status_code == 401
        return time.perf_counter() - started

    wrong, unknown = [], []
    for i in range(7):  # interleaved, so load on the machine hits both alike
        wrong.append(await timed(account.email))
        unknown.append(await timed(f"nobody-{i}@example.com"))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    # Both verify one argon2id hash: within a factor of two, far from the 100x of a
    # lookup that skips hashing.
    assert 0.5 < ratio < 2, (wrong, unknown)
