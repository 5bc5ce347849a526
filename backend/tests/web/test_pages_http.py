"""The web pages over HTTP: sessions, CSRF, redirects, sharing tags, error pages."""

from __future__ import annotations

import re

import httpx
import pytest

from app.config import Settings
from tests.support import flows, images
from tests.support.accounts import PASSWORD
from tests.support.app import app_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, email: str, next_path: str = "") -> httpx.Response:
    token = _csrf(await client.get("/login"))
    form = {"email": email, "password": PASSWORD, "csrf_token": token, "next": next_path}
    return await client.post("/login", data=form)


async def test_login_sets_a_safe_session_cookie_and_logout_ends_it(
    client: httpx.AsyncClient,
) -> None:
    account = await flows.register(client)
    signed_in = await _sign_in(client, account.email)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/gallery"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith("chitram_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test
    session = client.cookies["chitram_session"]
    gallery = await client.get("/gallery")
    assert gallery.status_code == 200
    assert account.email in gallery.text

    logout = await client.post("/logout", data={"csrf_token": _csrf(gallery)})
    assert logout.status_code == 303
    assert "chitram_session" not in client.cookies
    # The old cookie opens nothing any more: the session ended on the server.
    client.cookies.set("chitram_session", session)
    again = await client.get("/gallery")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/gallery"
    told = await client.get(again.headers["location"])  # says so, and drops the cookie
    assert "You have been signed out" in told.text
    assert 'chitram_session=""' in told.headers.get("set-cookie", "")


async def test_cookies_are_secure_behind_https(settings: Settings) -> None:
    async with app_client(settings, base_url="https://testserver") as client:
        account = await flows.register(client)
        page = await client.get("/login")
        assert "Secure" in page.headers["set-cookie"]  # the CSRF cookie
        signed_in = await _sign_in(client, account.email)
        assert "Secure" in signed_in.headers["set-cookie"]


@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        ("/i/123?x=1", "/i/123?x=1"),
        ("//evil.example/", "/gallery"),
        ("https://evil.example/", "/gallery"),
        ("/\\evil.example", "/gallery"),
        ("javascript:alert(1)", "/gallery"),
    ],
)
async def test_next_redirects_only_to_local_paths(
    client: httpx.AsyncClient, next_path: str, expected: str
) -> None:
    account = await flows.register(client)
    response = await _sign_in(client, account.email, next_path)
    assert response.headers["location"] == expected


async def test_state_changing_posts_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    account = await flows.register(client)
    owned = await client.post(
        "/api/v1/images/upload", files={"file": ("a.png", images.png())}, headers=account.headers
    )
    image_id = owned.json()["id"]
    before = _csrf(await client.get("/login"))
    assert (await _sign_in(client, account.email)).status_code == 303
    token = _csrf(await client.get("/gallery"))  # rotated at sign-in, bound to the session
    assert token != before
    forged = {"csrf_token": "0" * 64}
    attempts = {
        "login": ("/login", {"email": account.email, "password": PASSWORD}),
        "register": ("/register", {"email": "new@example.com", "password": PASSWORD}),
        "logout": ("/logout", {}),
        "delete": (f"/i/{image_id}/delete", {}),
    }
    for name, (path, form) in attempts.items():
        for extra in ({}, forged):
            refused = await client.post(path, data={**form, **extra})
            assert refused.status_code == 403, (name, extra)
    upload = await client.post("/upload", files={"file": ("b.png", images.png())})
    assert upload.status_code == 403
    # A token minted for another browser's cookie is refused too.
    other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with other:
        foreign = _csrf(await other.get("/"))
    assert (
        await client.post(f"/i/{image_id}/delete", data={"csrf_token": foreign})
    ).status_code == 403
    assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 200
    # With the browser's own token the same form works.
    deleted = await client.post(f"/i/{image_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 404


async def test_web_upload_answers_json_to_the_script_and_redirects_without_it(
    client: httpx.AsyncClient,
) -> None:
    token = _csrf(await client.get("/"))
    files = {"file": ("a.png", images.png())}
    scripted = await client.post(
        "/upload",
        files=files,
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert scripted.status_code == 201
    body = scripted.json()
    assert body["page_url"] == f"/i/{body['id']}"
    assert body["delete_token"]
    plain = await client.post(
        f"/upload?csrf_token={token}", files={"file": ("b.png", images.png(9, 9))}
    )
    assert plain.status_code == 303
    assert plain.headers["location"].startswith("/i/")
    refused = await client.post(
        "/upload",
        files={"file": ("x.png", b"not an image")},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "INVALID_FILE_FORMAT"


async def test_image_pages_unfurl_and_escape_hostile_names(client: httpx.AsyncClient) -> None:
    name = '<img src=x onerror=alert(1)>".png'
    uploaded = await client.post("/api/v1/images/upload", files={"file": (name, images.png())})
    image = uploaded.json()
    page = await client.get(f"/i/{image['id']}")
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert f'<meta property="og:url" content="http://testserver/i/{image["id"]}">' in page.text
    assert re.search(
        r'<meta property="og:image" content="http://testserver/api/v1/images/', page.text
    )
    assert '<meta name="twitter:card" content="summary_large_image">' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    # The direct link is a plain link: it works without JavaScript.
    assert f'<a href="{image["url"]}">' in page.text


async def test_missing_pages_are_friendly(client: httpx.AsyncClient) -> None:
    for path in ("/i/00000000-0000-4000-8000-000000000000", "/no/such/page"):
        page = await client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Back to the upload page" in page.text
    api = await client.get("/api/v1/images/00000000-0000-4000-8000-000000000000")
    assert api.json()["error"]["code"] == "IMAGE_NOT_FOUND"  # the API stays JSON


async def test_the_gallery_needs_a_session_and_lists_thumbnails_only(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/gallery")).headers["location"] == "/login?next=/gallery"
    account = await flows.register(client)
    for i in range(3):
        await client.post(
            "/api/v1/images/upload",
            files={"file": (f"g{i}.png", images.png(40 + i, 30))},
            headers=account.headers,
        )
    await _sign_in(client, account.email)
    gallery = (await client.get("/gallery")).text
    assert gallery.count('class="tile"') == 3
    assert "/file" not in gallery  # tiles are thumbnails or placeholders, never originals
