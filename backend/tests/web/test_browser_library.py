"""The library in a browser (issue 16): title and tags from the image page, search and tag
chips in the gallery, an album made from a selection, the album as its owner and as a
stranger sees it, its zip, the camera details, a private image, and the placeholders
that show while thumbnails load. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support import images
from tests.support.accounts import PASSWORD
from tests.support.server import LiveServer
from tests.web.conftest import Browser
from tests.web.library_flows import TIMES, camera_jpeg, png_picture


def _file(name: str, data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def _register(visitor: Browser, email: str) -> None:
    page = visitor.page
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/gallery$"))


def _upload(visitor: Browser, files: list[dict[str, Any]]) -> dict[str, str]:
    """Upload `files` from the home page; their image ids by file name."""
    page = visitor.page
    page.goto("/")
    page.set_input_files("#file-input", files)
    links = page.locator(".upload-link")
    links.nth(len(files) - 1).wait_for(timeout=20_000)
    found = {}
    for item in page.locator(".upload-item").all():
        href = item.locator(".upload-link").get_attribute("href") or ""
        found[item.locator(".upload-name").inner_text()] = href.rsplit("/", 1)[-1]
    return found


def _tiles(visitor: Browser) -> list[str]:
    return list(
        visitor.page.locator("#gallery .tile").evaluate_all("ts => ts.map(t => t.dataset.imageId)")
    )


def _thumbnails_loaded(visitor: Browser, selector: str) -> None:
    """Wait until every picture under `selector` has its pixels (no placeholder left)."""
    page = visitor.page
    for img in page.locator(f"{selector} img").all():
        img.wait_for(timeout=30_000)
        img.scroll_into_view_if_needed()
    page.locator(f"{selector} img.placeheld").first.wait_for(state="detached", timeout=30_000)


def test_title_tags_search_album_details_and_privacy(
    visitor: Browser, browser: Any, site: LiveServer
) -> None:
    page = visitor.page
    _register(visitor, "library@example.com")
    ids = _upload(
        visitor,
        [
            _file("IMG_0412.jpg", camera_jpeg(480, 320), "image/jpeg"),
            _file("beach.png", png_picture(300, 200, (230, 170, 60))),
            _file("notes.png", png_picture(120, 160, (150, 60, 200))),
        ],
    )
    photo, beach, notes = ids["IMG_0412.jpg"], ids["beach.png"], ids["notes.png"]

    # A title and tags, from the image page's form.
    page.goto(f"/i/{photo}")
    page.get_by_label("Title", exact=True).fill("Harbour at dusk")
    page.get_by_label("Description", exact=True).fill("Boats coming home.")
    page.get_by_label("Tags", exact=True).fill("sea, boats")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(rf"/i/{photo}\?done=saved$"))
    assert page.get_by_role("status").first.inner_text() == "Saved."
    assert page.locator("h1").inner_text() == "Harbour at dusk"
    assert page.locator(".file-line").inner_text() == "IMG_0412.jpg"
    about = page.get_by_label("About this image")
    assert "Boats coming home." in about.inner_text()
    assert about.get_by_role("link", name="sea").is_visible()

    # The Details panel: the camera, for the owner.
    details = page.locator("#details")
    for text in (
        "Chitram Optics Pinhole One",
        "Prime 35mm F2.8",
        "1/250 s",
        "f/2.8",
        "400",
        "35 mm",
        f"480 {TIMES} 320 px",
        "1 May 2024, 14:22 (UTC+02:00)",
    ):
        assert text in details.inner_text(), text
    page.locator("img.preview-image").wait_for(timeout=30_000)
    _thumbnails_loaded(visitor, ".preview")
    visitor.shoot("library-image-owner")

    # Search by a word of the title, then by a tag chip.
    page.goto("/gallery")
    _thumbnails_loaded(visitor, "#gallery")
    assert sorted(_tiles(visitor)) == sorted(ids.values())
    page.get_by_label("Search your images").fill("harb")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/gallery\?q=harb&sort=newest$"))
    assert _tiles(visitor) == [photo]
    page.get_by_role("link", name="Remove the filter Words: harb").click()
    page.wait_for_url(re.compile(r"/gallery$"))  # the default order needs no word
    chips = page.get_by_role("navigation", name="Filter by tag")
    chips.get_by_role("link", name=re.compile(r"^boats")).click()
    page.wait_for_url(re.compile(r"/gallery\?tag=boats$"))
    assert _tiles(visitor) == [photo]
    assert " ".join(chips.locator(".chip.active").inner_text().split()) == "✓ boats 1"
    page.get_by_label("Search your images").fill("harbour")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/gallery\?q=harbour&tag=boats&sort=newest$"))  # chip kept
    assert _tiles(visitor) == [photo]
    _thumbnails_loaded(visitor, "#gallery")
    visitor.shoot("library-gallery-search")

    # An album from a selection of two.
    page.goto("/gallery")
    add = page.get_by_role("button", name="Add to album")
    assert add.is_hidden()  # the actions show once something is selected
    page.get_by_label("Select Harbour at dusk").check()
    page.get_by_label("Select notes.png").check()
    assert page.locator("#bulk-count").inner_text() == "2 images selected."
    visitor.shoot("library-gallery-selection")
    page.get_by_label("New album title").fill("Harbour days")
    add.click()
    page.wait_for_url(re.compile(r"/a/[0-9a-f-]{36}\?done=added$"))
    album_url = page.url.split("?")[0]
    album_id = album_url.rsplit("/", 1)[-1]
    assert page.locator("h1").inner_text() == "Harbour days"
    album_tiles = page.locator("#album-images .tile")
    in_album = album_tiles.evaluate_all("ts => ts.map(t => t.dataset.imageId)")
    assert sorted(in_album) == sorted([photo, notes])  # in the gallery's order
    assert beach not in page.content()

    # One of them goes private: the owner still sees it.
    page.goto(f"/i/{notes}")
    page.get_by_label("Only me").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(rf"/i/{notes}\?done=saved$"))
    assert page.get_by_text("Private: only you can see it").is_visible()
    page.locator("img.preview-image").wait_for(timeout=30_000)  # through the page's paths
    assert page.locator("img.preview-image").evaluate("i => i.naturalWidth") > 0
    page.goto(album_url)
    assert album_tiles.count() == 2
    page.get_by_role("button", name="Make Harbour at dusk the cover").click()
    page.wait_for_url(re.compile(r"/a/[0-9a-f-]{36}\?done=cover$"))
    cover = page.locator(f'#album-images .tile[data-image-id="{photo}"] .cover-badge')
    assert cover.inner_text() == "Cover"
    assert page.get_by_role("button", name="Remove notes.png from the album").is_visible()
    _thumbnails_loaded(visitor, "#album-images")
    visitor.shoot("library-album-owner")

    page.goto("/albums")
    card = page.locator(f'.album-card[data-album-id="{album_id}"]')
    assert "Harbour days" in card.inner_text()
    assert "2 images" in card.inner_text()
    _thumbnails_loaded(visitor, ".albums")
    visitor.shoot("library-albums")

    # A stranger: the album without the private image, its zip, and no private page.
    stranger = Browser(browser, site.url)
    try:
        other = stranger.page
        other.goto(album_url)
        assert other.locator("#album-images .tile").evaluate_all(
            "ts => ts.map(t => t.dataset.imageId)"
        ) == [photo]
        assert "1 image" in other.locator(".album-meta").inner_text()
        assert other.get_by_role("heading", name="Edit the album").count() == 0
        assert other.locator('meta[property="og:image"]').get_attribute("content") == (
            f"{site.url}/api/v1/images/{photo}/thumbnail?size=large"
        )
        zip_link = other.get_by_role("link", name="Download zip")
        zipped = httpx.get(site.url + (zip_link.get_attribute("href") or ""))
        assert zipped.status_code == 200
        assert zipped.headers["content-type"] == "application/zip"
        _thumbnails_loaded(stranger, "#album-images")
        stranger.shoot("library-album-anonymous")
        missing = other.goto(f"/i/{notes}")
        assert missing is not None
        assert missing.status == 404
        assert other.locator("h1").inner_text() == "Not found"
        assert stranger.errors == []
    finally:
        stranger.close()


def test_tiles_show_their_placeholder_until_the_thumbnail_arrives(
    visitor: Browser, site: LiveServer
) -> None:
    page = visitor.page
    _register(visitor, "placeholders@example.com")
    token = httpx.post(
        f"{site.url}/api/v1/auth/login",
        json={"email": "placeholders@example.com", "password": PASSWORD},
    ).json()["access_token"]
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {token}"}) as api:
        data = images.jpeg(200, 120, color=(230, 120, 20))
        image_id = api.post("/api/v1/images/upload", files={"file": ("orange.jpg", data)}).json()[
            "id"
        ]
        for _ in range(200):
            if api.get(f"/api/v1/images/{image_id}").json()["placeholder"]:
                break
            page.wait_for_timeout(50)
    # Thumbnails that never come: the placeholder stays, decoded in the page.
    page.route("**/thumbnail?size=small", lambda route: route.abort())
    page.goto("/gallery")
    tile_image = page.locator(f'.tile[data-image-id="{image_id}"] img')
    tile_image.wait_for()
    page.locator("img.placeheld").wait_for()
    background = tile_image.evaluate("i => i.style.backgroundImage")
    assert background.startswith('url("data:image/png;base64,')
    # The placeholder is the image's colour, roughly: orange, not grey.
    average = tile_image.evaluate(
        """img => new Promise(resolve => {
            const probe = new Image();
            probe.onload = () => {
                const canvas = document.createElement("canvas");
                canvas.width = probe.width; canvas.height = probe.height;
                const context = canvas.getContext("2d");
                context.drawImage(probe, 0, 0);
                const middle = context.getImageData(probe.width >> 1, probe.height >> 1, 1, 1);
                const [r, g, b] = middle.data;
                resolve([r, g, b]);
            };
            probe.src = img.style.backgroundImage.slice(5, -2);
        })"""
    )
    red, green, blue = average
    assert red > 180, average
    assert 60 < green < 170, average
    assert blue < 80, average
    # Once the thumbnail loads, the placeholder goes.
    page.unroute("**/thumbnail?size=small")
    page.reload()
    page.locator(f'.tile[data-image-id="{image_id}"] img').wait_for()
    page.locator("img.placeheld").wait_for(state="detached", timeout=30_000)
    assert page.locator(".tile img").evaluate("i => i.naturalWidth") > 0
