"""What a new user does in a browser: upload, share, watch thumbnails arrive, delete,
sign up, page through the gallery, sign out; and what a hostile file name cannot do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import images
from tests.support.accounts import PASSWORD
from tests.support.server import LiveServer, live_server, live_worker
from tests.web.conftest import Browser, site_env

HOSTILE = "<img src=x onerror=alert(1)>.png"


def _file(name: str, data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def _upload_one(visitor: Browser, name: str = "sunset.png", data: bytes | None = None) -> str:
    """Choose one file on the home page; the image page's URL it lands on."""
    page = visitor.page
    page.goto("/")
    with page.expect_navigation(url=re.compile(r"/i/[0-9a-f-]+$")):
        page.set_input_files("#file-input", _file(name, data or images.png(64, 48)))
    return str(page.url)


def test_upload_with_the_file_chooser_lands_on_the_image_page(
    visitor: Browser, site: LiveServer
) -> None:
    visitor.page.goto("/")
    visitor.shoot("home")
    data = images.png(120, 80)
    _upload_one(visitor, "sunset.png", data)
    page = visitor.page
    assert page.locator("h1").inner_text() == "sunset.png"
    link = page.locator("#direct-link").input_value()
    assert link.startswith(site.url)
    assert link.endswith("/file")
    assert httpx.get(link).content == data
    assert page.locator("a", has_text="Open the original").get_attribute("href") == link
    page.locator("img.preview-image").wait_for(timeout=20_000)  # the thumbnail fills in
    visitor.shoot("image")


def test_several_files_upload_with_a_progress_bar_each(visitor: Browser) -> None:
    page = visitor.page
    page.goto("/")
    page.set_input_files(
        "#file-input", [_file(f"photo-{i}.png", images.png(30 + i, 30)) for i in range(3)]
    )
    items = page.locator(".upload-item")
    items.nth(2).wait_for()
    assert items.count() == 3
    for i in range(3):
        items.nth(i).locator(".upload-link").wait_for(timeout=20_000)
        assert items.nth(i).locator("progress").get_attribute("aria-label") == (
            f"Upload progress of photo-{i}.png"
        )
        assert items.nth(i).locator("progress").evaluate("bar => bar.value") == 100
    assert page.url.endswith("/")  # several files: stay here, a link each
    visitor.shoot("uploads")
    page.locator(".upload-link").first.click()
    page.wait_for_url(re.compile(r"/i/"))


def test_copy_the_direct_link(browser: Any, site: LiveServer) -> None:
    visitor = Browser(browser, site.url, permissions=["clipboard-read", "clipboard-write"])
    try:
        _upload_one(visitor)
        page = visitor.page
        page.get_by_role("button", name="Copy").first.click()
        page.locator(".copy-status", has_text="Direct link copied.").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#direct-link").input_value()
        markdown = page.locator("#embed-markdown").input_value()
        assert markdown == f"![sunset.png]({copied})"
        assert page.locator("#embed-bbcode").input_value() == f"[img]{copied}[/img]"
    finally:
        visitor.close()


def test_an_anonymous_upload_is_deleted_from_the_browser_that_made_it(
    visitor: Browser, browser: Any, site: LiveServer
) -> None:
    url = _upload_one(visitor)
    stranger = Browser(browser, site.url)
    try:
        stranger.page.goto(url)
        assert stranger.page.locator("#anonymous-delete").is_hidden()
        assert stranger.page.get_by_text("Only the person who uploaded").is_visible()
    finally:
        stranger.close()
    page = visitor.page
    page.get_by_role("button", name="Delete image").click()
    page.wait_for_url(re.compile(r"/\?deleted=1$"))
    assert page.get_by_role("status").inner_text() == "The image was deleted."
    assert visitor.dialogs == ["confirm: Delete this image for good?"]
    assert httpx.get(url).status_code == 404


def test_register_log_in_page_through_the_gallery_and_log_out(
    visitor: Browser, site: LiveServer
) -> None:
    page = visitor.page
    page.goto("/register")
    visitor.shoot("register")
    page.get_by_label("Email").fill("gallery@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/gallery$"))
    assert page.get_by_text("No images yet").is_visible()
    token = httpx.post(
        f"{site.url}/api/v1/auth/login", json={"email": "gallery@example.com", "password": PASSWORD}
    ).json()["access_token"]
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {token}"}) as api:
        for i in range(30):
            files = {"file": (f"g-{i:02}.png", images.png(20 + i, 16))}
            assert api.post("/api/v1/images/upload", files=files).status_code == 201
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/gallery")
    page.wait_for_url(re.compile(r"/login\?next=/gallery$"))
    visitor.shoot("login")
    page.get_by_label("Email").fill("GALLERY@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/gallery$"))
    tiles = page.locator(".tile")
    assert tiles.count() == 24
    page.get_by_role("link", name="Load more").click()
    # Locator waits, not wait_for_function: a string predicate is eval, which the
    # page's CSP (rightly) refuses.
    tiles.nth(29).wait_for()
    ids = tiles.evaluate_all("tiles => tiles.map(t => t.dataset.imageId)")
    assert len(set(ids)) == 30  # no duplicates
    assert page.get_by_role("link", name="Load more").count() == 0
    names = tiles.locator(".tile-name").all_inner_texts()
    assert names == [f"g-{i:02}.png" for i in reversed(range(30))]  # newest first
    page.locator(".tile img").nth(29).wait_for(timeout=30_000)  # every placeholder filled
    sources = page.locator(".tile img").evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
    assert all(src.endswith("/thumbnail?size=small") for src in sources)  # never originals
    assert page.locator(".tile img").first.get_attribute("loading") == "lazy"
    assert page.locator(".tile img").first.get_attribute("width")
    visitor.shoot("gallery")
    session = next(c for c in visitor.context.cookies() if c["name"] == "chitram_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("link", name="Log in").is_visible()
    # The cookie is dead on the server, not just forgotten by this browser.
    replayed = httpx.get(f"{site.url}/gallery", cookies={"chitram_session": session["value"]})
    assert replayed.status_code == 303


def test_a_refused_file_shows_why(visitor: Browser) -> None:
    page = visitor.page
    page.goto("/")
    page.set_input_files("#file-input", _file("notes.png", b"just some text", "image/png"))
    failed = page.locator(".upload-item.failed")
    failed.wait_for(timeout=20_000)
    assert "Refused: The file is not a decodable image" in failed.inner_text()
    visitor.shoot("refused")


def test_a_hostile_file_name_is_only_text(visitor: Browser) -> None:
    _upload_one(visitor, HOSTILE)
    page = visitor.page
    assert page.locator("h1").inner_text() == HOSTILE
    assert page.title() == f"{HOSTILE} · Chitram"
    assert page.locator('img[src="x"]').count() == 0
    page.goto("/")
    page.set_input_files("#file-input", [_file(HOSTILE, images.png(12, 12))] * 2)
    page.locator(".upload-item.done").nth(1).wait_for(timeout=20_000)
    assert page.locator(".upload-name").first.inner_text() == HOSTILE
    assert page.locator('img[src="x"]').count() == 0
    assert visitor.dialogs == []  # no alert() ran anywhere


def test_friendly_not_found_page(visitor: Browser) -> None:
    response = visitor.page.goto("/i/00000000-0000-4000-8000-000000000000")
    assert response is not None
    assert response.status == 404
    assert visitor.page.locator("h1").inner_text() == "Not found"
    visitor.shoot("not-found")


def test_keyboard_only_reaches_the_upload_control(visitor: Browser) -> None:
    page = visitor.page
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file-input":
            break
    assert page.evaluate("document.activeElement.id") == "file-input"
    label = page.locator("label[for=file-input]").inner_text()
    assert label == "Choose images…"


def test_a_pending_thumbnail_fills_in_when_the_worker_makes_it(
    browser: Any, tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    # With Redis and no worker yet, thumbnails wait in the queue: the page shows the
    # placeholder, then the picture once a worker starts, without a reload.
    env = site_env(tmp_path, REDIS_URL=redis_url, REDIS_PREFIX=queue_name, QUEUE_NAME=queue_name)
    with live_server(env, tmp_path) as server:
        visitor = Browser(browser, server.url)
        try:
            _upload_one(visitor)
            page = visitor.page
            placeholder = page.get_by_role("img", name="Preview being made")
            assert placeholder.is_visible()
            visitor.shoot("image-pending")
            assert page.locator("#thumbnail-links").inner_text() == "being made…"
            with live_worker(env, tmp_path):
                page.locator("img.preview-image").wait_for(timeout=30_000)
            assert placeholder.count() == 0
            # The details follow: links to the three sizes, without a reload.
            assert page.locator("#thumbnail-links").inner_text() == "small · medium · large"
            visitor.shoot("image-ready")
            assert visitor.errors == []
        finally:
            visitor.close()


DROP = """bytes => {
    const file = new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"});
    const data = new DataTransfer();
    data.items.add(file);
    const form = document.getElementById("upload-form");
    const drop = {dataTransfer: data, bubbles: true, cancelable: true};
    form.dispatchEvent(new DragEvent("drop", drop));
}"""
PASTE = """bytes => {
    const file = new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"});
    const data = new DataTransfer();
    data.items.add(file);
    document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
}"""


@pytest.mark.parametrize(("script", "name"), [(DROP, "dropped.png"), (PASTE, "pasted.png")])
def test_drop_or_paste_an_image_to_upload_it(visitor: Browser, script: str, name: str) -> None:
    # What the browser hands the page for a dropped file, or a pasted screenshot.
    page = visitor.page
    page.goto("/")
    with page.expect_navigation(url=re.compile(r"/i/[0-9a-f-]+$")):
        page.evaluate(script, list(images.png(25, 25)))
    assert page.locator("h1").inner_text() == name


def test_a_post_without_the_csrf_token_is_refused_in_the_browser(visitor: Browser) -> None:
    page = visitor.page
    page.goto("/register")
    page.get_by_label("Email").fill("csrf@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/gallery$"))
    # What a forged form or script would send: the browser's cookies, but no token.
    statuses = page.evaluate(
        """async () => {
            const post = (url, body) => fetch(url, {method: "POST", body, redirect: "manual"});
            const logout = await post("/logout", new URLSearchParams());
            const upload = await post("/upload", new FormData());
            return [logout.status, upload.status];
        }"""
    )
    assert statuses == [403, 403]
    page.goto("/gallery")
    assert page.get_by_role("button", name="Log out").is_visible()  # still signed in
