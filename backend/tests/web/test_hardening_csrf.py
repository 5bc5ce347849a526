"""CSRF tokens bound to the session, Secure cookies behind a TLS proxy, and
ended sessions answered as signed out (never as anonymous)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from tests.support import flows, images
from tests.support.accounts import PASSWORD, Account
from tests.support.app import app_client

pytestmark = pytest.mark.anyio
# database_kind is the conftest's: SQLite and PostgreSQL (sessions live in the database).


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, email: str) -> httpx.Response:
    token = _csrf(await client.get("/login"))
    form = {"email": email, "password": PASSWORD, "csrf_token": token}
    response = await client.post("/login", data=form)
    assert response.status_code == 303, response.text
    return response


async def _owned_image(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post(
        "/api/v1/images/upload", files={"file": ("a.png", images.png())}, headers=account.headers
    )
    assert response.status_code == 201
    return str(response.json()["id"])


def _browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser (its own cookie jar) on the same app."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


# ---- CSRF tokens are bound to the session ------------------------------------------------


async def test_a_planted_anonymous_token_pair_opens_nothing_in_a_signed_in_browser(
    client: httpx.AsyncClient,
) -> None:
    victim = await flows.register(client)
    image_id = await _owned_image(client, victim)
    await _sign_in(client, victim.email)
    async with _browser(client) as attacker:
        page = await attacker.get("/")  # an anonymous page load: a cookie and its token
        planted_cookie, planted_token = attacker.cookies["chitram_csrf"], _csrf(page)
    # A sibling subdomain (or any cookie injection) plants the pair in the victim's browser.
    client.cookies.set("chitram_csrf", planted_cookie)
    forged = await client.post(f"/i/{image_id}/delete", data={"csrf_token": planted_token})
    assert forged.status_code == 403
    upload = await client.post(
        "/upload",
        files={"file": ("b.png", images.png())},
        headers={"X-CSRF-Token": planted_token, "Accept": "application/json"},
    )
    assert upload.status_code == 403
    assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 200
    # The victim's own page carries the token of their session, which works.
    own = _csrf(await client.get(f"/i/{image_id}"))
    deleted = await client.post(f"/i/{image_id}/delete", data={"csrf_token": own})
    assert deleted.status_code == 303
    assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 404


async def test_the_token_rotates_at_sign_in_and_is_bound_to_one_session(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)
    image_id = await _owned_image(client, account)
    before = _csrf(await client.get("/"))
    pre_session = client.cookies["chitram_csrf"]
    signed_in = await _sign_in(client, account.email)
    assert "chitram_csrf=" in signed_in.headers.get("set-cookie", "")
    assert client.cookies["chitram_csrf"] != pre_session  # the pre-session secret rotates
    first = _csrf(await client.get("/"))
    assert first != before
    refused = await client.post(f"/i/{image_id}/delete", data={"csrf_token": before})
    assert refused.status_code == 403
    # The same account in another browser has its own session, hence its own token.
    async with _browser(client) as other:
        await _sign_in(other, account.email)
        second = _csrf(await other.get("/"))
        assert second != first
        across = await other.post(f"/i/{image_id}/delete", data={"csrf_token": first})
        assert across.status_code == 403
    assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 200


@pytest.mark.parametrize("token", ["é" * 64, "\u202e" + "0" * 63], ids=["latin", "bidi"])
async def test_a_non_ascii_token_is_refused_not_a_500(
    client: httpx.AsyncClient, token: str
) -> None:
    await client.get("/")
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 403


# ---- Secure cookies behind a TLS-terminating proxy --------------------------------------


@pytest.mark.parametrize(
    ("peer", "trusted", "secure"),
    [
        ("10.1.2.3", ("10.0.0.0/8",), True),  # a configured proxy
        ("127.0.0.1", (), True),  # loopback is always trusted
        ("203.0.113.9", ("10.0.0.0/8",), False),  # anyone else cannot claim HTTPS
    ],
)
async def test_cookies_are_secure_when_a_trusted_proxy_says_https(
    settings: Settings, peer: str, trusted: tuple[str, ...], secure: bool
) -> None:
    proxies = tuple(ipaddress.ip_network(p) for p in trusted)
    behind = settings.model_copy(update={"trusted_proxies": proxies})
    async with app_client(behind, peer=peer) as client:
        client.headers["X-Forwarded-Proto"] = "https"
        account = await flows.register(client)
        page = await client.get("/login")
        assert ("Secure" in page.headers["set-cookie"]) is secure  # the CSRF cookie
        # The test speaks plain HTTP to the app (the proxy's side), where a client keeps
        # Secure cookies to itself: send the CSRF cookie by hand.
        form = {"email": account.email, "password": PASSWORD, "csrf_token": _csrf(page)}
        cookie = {"Cookie": f"chitram_csrf={page.cookies['chitram_csrf']}"}
        signed_in = await client.post("/login", data=form, headers=cookie)
        assert signed_in.status_code == 303
        set_cookies = signed_in.headers.get_list("set-cookie")
        session_cookie = next(c for c in set_cookies if "chitram_session=" in c)
        assert ("Secure" in session_cookie) is secure


# ---- an ended session is signed out, never anonymous ------------------------------------


async def _end_elsewhere(client: httpx.AsyncClient) -> None:
    """Sign the session out from another tab of the same browser (same cookie)."""
    async with _browser(client) as tab:
        tab.cookies.set("chitram_session", client.cookies["chitram_session"])
        logout = await tab.post("/logout", data={"csrf_token": _csrf(await tab.get("/"))})
        assert logout.status_code == 303


async def _expire(settings: Settings) -> None:
    engine = create_async_engine(settings.resolved_database_url)
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE web_sessions SET expires_at = :t"), {"t": past})
    await engine.dispose()


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_an_upload_from_an_ended_session_is_refused_not_made_anonymous(
    client: httpx.AsyncClient, settings: Settings, how: str
) -> None:
    account = await flows.register(client)
    await _sign_in(client, account.email)
    token = _csrf(await client.get("/"))  # the upload page, loaded while signed in
    if how == "revoked":
        await _end_elsewhere(client)
    else:
        await _expire(settings)
    fetch = await client.post(
        "/upload",
        files={"file": ("a.png", images.png())},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert fetch.status_code == 401, fetch.text
    assert fetch.json()["error"]["code"] == "UNAUTHORIZED"
    assert "signed out" in fetch.json()["error"]["message"]
    form = await client.post(f"/upload?csrf_token={token}", files={"file": ("a.png", images.png())})
    assert form.status_code == 303
    assert form.headers["location"] == "/login?next=/"
    # Nothing was stored, under the account or anonymously.
    mine = await client.get("/api/v1/images", headers=account.headers)
    assert mine.json()["items"] == []
    # The page says so, and the dead cookie goes.
    page = await client.get("/")
    assert "You have been signed out" in page.text
    assert 'chitram_session=""' in page.headers.get("set-cookie", "")
    assert "chitram_session" not in client.cookies


async def test_deleting_from_an_ended_session_sends_the_person_to_sign_in(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)
    image_id = await _owned_image(client, account)
    await _sign_in(client, account.email)
    token = _csrf(await client.get(f"/i/{image_id}"))
    await _end_elsewhere(client)
    response = await client.post(f"/i/{image_id}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/i/{image_id}"
    login = await client.get(response.headers["location"])
    assert "You have been signed out" in login.text
    assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 200
