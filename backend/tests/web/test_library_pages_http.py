"""The library's pages over HTTP (contract sections 10 to 12, issue 16): private and
expired things are "not found" to whoever may not see them, every form needs the
browser's CSRF token and a live session, album pages unfurl, and the forms do what
they say. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import io
import re
import zipfile

import httpx
import pytest

from tests.albums import support as albums
from tests.support import flows, images
from tests.support.accounts import Account
from tests.web.library_flows import (
    TIMES,
    browser,
    camera_jpeg,
    csrf_of,
    meta,
    post_form,
    sign_in,
    wait_until_gone,
)

pytestmark = pytest.mark.anyio
IMAGES = "/api/v1/images"


async def _image(
    client: httpx.AsyncClient, account: Account, name: str = "a.png", **fields: str
) -> str:
    body = await flows.upload_ok(
        client, images.png(20 + len(name), 16), filename=name, account=account, fields=fields
    )
    await flows.wait_for_thumbnails(client, body["id"], account=account)
    return str(body["id"])


async def _patch(
    client: httpx.AsyncClient, account: Account, image_id: str, **body: object
) -> None:
    response = await client.patch(f"{IMAGES}/{image_id}", json=body, headers=account.headers)
    assert response.status_code == 200, response.text


async def _not_found(client: httpx.AsyncClient, path: str) -> None:
    """`path` answers a browser with the "not found" page."""
    page = await client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 404, path
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text


# ---- who may see what -------------------------------------------------------------------


async def test_a_private_image_is_not_found_to_others_and_never_stored_for_its_owner(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    image_id = await _image(client, owner, "secret.png")
    await _patch(client, owner, image_id, visibility="private", title="Diary page")
    # Anonymous: the page and the page paths of its bytes are "not found".
    for path in (f"/i/{image_id}", f"/i/{image_id}/file", f"/i/{image_id}/thumbnail?size=small"):
        await _not_found(client, path)
    # Another signed-in user: the same.
    async with browser(client) as other_browser:
        await sign_in(other_browser, await flows.register(client))
        await _not_found(other_browser, f"/i/{image_id}")
        await _not_found(other_browser, f"/a/{image_id}")
    # The owner: the page, and its bytes through the paths that take the session.
    await sign_in(client, owner)
    page = await client.get(f"/i/{image_id}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert "Private: only you can see it" in page.text
    assert '<h1 class="filename">Diary page</h1>' in page.text
    # The page shows the private image through its own paths (the API takes no cookie).
    assert f'src="http://testserver/i/{image_id}/thumbnail?size=large"' in page.text
    for path in (f"/i/{image_id}/file", f"/i/{image_id}/thumbnail?size=small"):
        served = await client.get(path)
        assert served.status_code == 200, path
        assert served.headers["cache-control"] == "private, no-store"
    assert (await client.get(f"{IMAGES}/{image_id}/file")).status_code == 404  # no cookie there


async def test_an_expired_image_page_is_not_found_and_leaves_the_gallery(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    kept = await _image(client, owner, "kept.png")
    await sign_in(client, owner)
    going = (await flows.upload_ok(client, account=owner, fields={"expires_in": "3"}))["id"]
    assert going in (await client.get("/gallery")).text
    await wait_until_gone(client, f"{IMAGES}/{going}")
    await _not_found(client, f"/i/{going}")
    gallery = await client.get("/gallery")
    assert going not in gallery.text
    assert kept in gallery.text


async def test_a_private_album_is_not_found_to_others(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    album = await albums.create(client, owner, title="Just mine", visibility="private")
    await _not_found(client, f"/a/{album['id']}")
    await _not_found(client, f"/a/{album['id']}/download")
    await sign_in(client, owner)
    page = await client.get(f"/a/{album['id']}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert "Private: only you can see it" in page.text


async def test_an_album_shows_visitors_only_what_they_may_see(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    shown_id = await _image(client, owner, "shown.png")
    hidden_id = await _image(client, owner, "hidden.png")
    await _patch(client, owner, hidden_id, visibility="private")
    album = await albums.create(client, owner, title="Trip")
    assert (await albums.put_images(client, owner, album["id"], [shown_id, hidden_id])).is_success
    visitor = await client.get(f"/a/{album['id']}")
    assert visitor.status_code == 200
    assert shown_id in visitor.text
    assert hidden_id not in visitor.text
    assert "1 image" in visitor.text
    assert "Edit the album" not in visitor.text  # no owner controls
    zipped = await client.get(f"/a/{album['id']}/download")
    assert zipped.status_code == 200
    assert zipped.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(zipped.content)).namelist() == ["shown.png"]
    await sign_in(client, owner)
    own = await client.get(f"/a/{album['id']}")
    assert hidden_id in own.text
    assert "Edit the album" in own.text
    assert "2 images" in own.text
    mine = await client.get(f"/a/{album['id']}/download")
    assert sorted(zipfile.ZipFile(io.BytesIO(mine.content)).namelist()) == [
        "hidden.png",
        "shown.png",
    ]


async def test_an_album_page_unfurls_with_its_cover(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    first = await _image(client, owner, "first.png")
    cover = await _image(client, owner, "cover.png")
    album = await albums.create(client, owner, title="Lisbon <spring>", description="Trams & tiles")
    assert (await albums.put_images(client, owner, album["id"], [first, cover])).is_success
    changed = await client.patch(
        f"{albums.ALBUMS}/{album['id']}", json={"cover_image_id": cover}, headers=owner.headers
    )
    assert changed.status_code == 200
    page = await client.get(f"/a/{album['id']}")
    assert page.status_code == 200
    assert meta(page, "og:title") == html.escape("Lisbon <spring>")
    assert meta(page, "og:description") == "Trams &amp; tiles"
    assert meta(page, "og:type") == "website"
    assert meta(page, "og:url") == f"http://testserver/a/{album['id']}"
    assert meta(page, "og:image") == f"http://testserver{IMAGES}/{cover}/thumbnail?size=large"
    assert meta(page, "twitter:card") == "summary_large_image"
    assert "<title>Lisbon &lt;spring&gt; · Chitram</title>" in page.text


# ---- forms: CSRF and ended sessions -------------------------------------------------------


async def test_every_library_form_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    image_id = await _image(client, owner)
    album = await albums.create(client, owner, title="Kept")
    assert (await albums.put_images(client, owner, album["id"], [image_id])).is_success
    token = await sign_in(client, owner)
    a = f"/a/{album['id']}"
    forms = {
        f"/i/{image_id}/edit": {"title": "Changed", "visibility": "private", "expiry": "never"},
        f"/i/{image_id}/album": {"album_id": "new", "new_album": "Forged"},
        "/gallery/album": {"image_ids": image_id, "album_id": "new", "new_album": "Forged"},
        "/gallery/visibility": {"image_ids": image_id, "visibility": "private"},
        "/gallery/expiry": {"image_ids": image_id, "expiry": "3600"},
        "/gallery/delete": {"image_ids": image_id},
        "/albums": {"title": "Forged"},
        f"{a}/edit": {"title": "Forged", "visibility": "private"},
        f"{a}/cover": {"image_id": image_id},
        f"{a}/remove": {"image_id": image_id},
        f"{a}/delete": {"with_images": "on"},
    }
    async with browser(client) as other:
        foreign = csrf_of(await other.get("/"))  # minted for another browser
    for path, form in forms.items():
        for sent in ({}, {"csrf_token": "0" * 64}, {"csrf_token": foreign}):
            refused = await client.post(
                path, data={**form, **sent}, headers={"Accept": "text/html"}
            )
            assert refused.status_code == 403, (path, sent)
            assert "did not come from this site" in refused.text
    # Nothing changed.
    image = (await client.get(f"{IMAGES}/{image_id}", headers=owner.headers)).json()
    assert (image["title"], image["visibility"], image["album_ids"]) == (
        None,
        "unlisted",
        [album["id"]],
    )
    listed = (await client.get(albums.ALBUMS, headers=owner.headers)).json()
    assert [a["title"] for a in listed["items"]] == ["Kept"]
    assert (await client.get(a)).status_code == 200
    # With the page's own token a form works.
    assert (await post_form(client, f"{a}/cover", token, image_id=image_id)).status_code == 303


async def test_an_ended_session_never_acts_anonymously(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    image_id = await _image(client, owner)
    token = await sign_in(client, owner)
    session = client.cookies["chitram_session"]
    gallery = await client.get("/gallery")
    assert (await post_form(client, "/logout", csrf_of(gallery))).status_code == 303
    client.cookies.set("chitram_session", session)  # the dead session's cookie comes back
    for path, form in {
        "/albums": {"title": "After sign-out"},
        f"/i/{image_id}/edit": {"title": "After sign-out", "expiry": "never"},
        "/gallery/album": {"image_ids": image_id, "album_id": "new", "new_album": "After"},
    }.items():
        answer = await post_form(client, path, token, **form)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")
    listed = (await client.get(albums.ALBUMS, headers=owner.headers)).json()
    assert listed["items"] == []
    image = (await client.get(f"{IMAGES}/{image_id}")).json()
    assert image["title"] is None


# ---- what the forms do -------------------------------------------------------------------


async def test_the_image_form_edits_title_tags_visibility_and_expiry(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    image_id = await _image(client, owner, "IMG_0001.png")
    token = await sign_in(client, owner)
    edit = f"/i/{image_id}/edit"
    saved = await post_form(
        client,
        edit,
        token,
        title="Harbour at dusk",
        description="Boats\nand gulls",
        tags="Sea, boats ,  , sunset",
        visibility="private",
        expiry="86400",
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/i/{image_id}?done=saved"
    image = (await client.get(f"{IMAGES}/{image_id}", headers=owner.headers)).json()
    assert image["title"] == "Harbour at dusk"
    assert image["description"] == "Boats\nand gulls"
    assert sorted(set(image["tags"]) - set(image["tags_auto"])) == ["boats", "sea", "sunset"]
    assert image["visibility"] == "private"
    assert image["expires_at"] is not None
    page = await client.get(saved.headers["location"])
    assert "Saved." in page.text
    assert 'value="boats, sea, sunset"' in page.text  # the owner's own tags
    # A date clears nothing else; "never" clears the expiry.
    on_date = await post_form(
        client, edit, token, title="Harbour", tags="sea", visibility="unlisted",
        expiry="date", expires_on="2099-01-31",
    )  # fmt: skip
    assert on_date.status_code == 303
    image = (await client.get(f"{IMAGES}/{image_id}", headers=owner.headers)).json()
    assert image["expires_at"] == "2099-02-01T00:00:00Z"
    assert image["visibility"] == "unlisted"
    kept = await post_form(client, edit, token, title="Harbour", tags="sea", expiry="keep")
    assert kept.status_code == 303
    image = (await client.get(f"{IMAGES}/{image_id}", headers=owner.headers)).json()
    assert image["expires_at"] == "2099-02-01T00:00:00Z"
    never = await post_form(client, edit, token, title="Harbour", tags="sea", expiry="never")
    assert never.status_code == 303
    assert (await client.get(f"{IMAGES}/{image_id}")).json()["expires_at"] is None


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"tags": "fine, not<ok>"}, "Tags"),
        ({"title": "x" * 201}, "Title"),
        ({"expiry": "date", "expires_on": "soon"}, "Expiry: choose a date"),
        ({"expiry": "date", "expires_on": "2001-01-01"}, "Expires at"),
        ({"expiry": "12345"}, "Expiry: choose one of the options"),
        ({"visibility": "public"}, "Visibility"),
    ],
)
async def test_a_bad_image_form_says_why_and_changes_nothing(
    client: httpx.AsyncClient, form: dict[str, str], says: str
) -> None:
    owner = await flows.register(client)
    image_id = await _image(client, owner)
    token = await sign_in(client, owner)
    sent = {"title": "New title", "tags": "", "visibility": "unlisted", "expiry": "never", **form}
    refused = await post_form(client, f"/i/{image_id}/edit", token, **sent)
    assert refused.status_code == 422
    error = re.search(r'<p class="error" role="alert" id="edit-error">([^<]*)</p>', refused.text)
    assert error, refused.text
    assert says in html.unescape(error.group(1))
    assert (await client.get(f"{IMAGES}/{image_id}")).json()["title"] is None


async def test_the_owner_sees_the_camera_details_and_others_do_not(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    body = await flows.upload_ok(client, camera_jpeg(), filename="photo.jpg", account=owner)
    anonymous = await client.get(f"/i/{body['id']}")
    assert anonymous.status_code == 200
    assert "Pinhole One" not in anonymous.text
    await sign_in(client, owner)
    page = await client.get(f"/i/{body['id']}")
    details = page.text[page.text.index('id="details"') :]
    for label, value in [
        ("Camera", "Chitram Optics Pinhole One"),
        ("Lens", "Prime 35mm F2.8"),
        ("Taken", "1 May 2024, 14:22 (UTC+02:00)"),
        ("Exposure", "1/250 s"),
        ("Aperture", "f/2.8"),
        ("ISO", "400"),
        ("Focal length", "35 mm"),
        ("Dimensions", f"96 {TIMES} 64 px"),
    ]:
        assert f"<dt>{label}</dt><dd>{value}</dd>" in details, label


async def test_the_gallery_searches_filters_by_tag_and_pages_with_the_filters(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    harbour = await _image(client, owner, "one.png")
    await _patch(client, owner, harbour, title="Harbour at dusk", tags=["sea"])
    beach = await _image(client, owner, "two.png")
    await _patch(client, owner, beach, tags=["sea", "sand"])
    other = await _image(client, owner, "three.png")
    await sign_in(client, owner)

    def tiles(page: httpx.Response) -> list[str]:
        return re.findall(r'<li class="tile" data-image-id="([0-9a-f-]+)"', page.text)

    assert tiles(await client.get("/gallery", params={"q": "harb"})) == [harbour]
    by_tag = await client.get("/gallery", params={"tag": "sea"})
    assert tiles(by_tag) == [beach, harbour]
    assert 'class="chip active" href="/gallery" aria-current="true"' in by_tag.text
    assert 'href="/gallery?tag=sea&amp;tag=sand"' in by_tag.text  # adds a chip
    assert "Tag: sea" in by_tag.text  # the filter in force, removable
    assert tiles(await client.get("/gallery", params=[("tag", "sea"), ("tag", "sand")])) == [beach]
    oldest = await client.get("/gallery", params={"sort": "oldest"})
    assert tiles(oldest) == [harbour, beach, other]
    assert "No images match" in (await client.get("/gallery", params={"q": "zebra"})).text
    # "Load more" keeps the filters.
    for number in range(25):
        image_id = (await flows.upload_ok(client, images.png(30 + number, 9), account=owner))["id"]
        await _patch(client, owner, image_id, tags=["many"])
    first = await client.get("/gallery", params={"tag": "many"})
    assert len(tiles(first)) == 24
    more = re.search(r'hx-get="(/gallery/more\?[^"]+)"', first.text)
    assert more
    rest = await client.get(html.unescape(more.group(1)))
    assert "tag=many" in html.unescape(more.group(1))
    assert len(tiles(rest)) == 1
    assert not set(tiles(rest)) & {harbour, beach, other}


async def test_a_selection_goes_into_a_new_album_and_the_owner_runs_it(
    client: httpx.AsyncClient,
) -> None:
    owner = await flows.register(client)
    ids = [await _image(client, owner, f"{name}.png") for name in ("a", "b", "c")]
    token = await sign_in(client, owner)
    nothing = await post_form(client, "/gallery/album", token, album_id="new", new_album="X")
    assert nothing.headers["location"] == "/gallery?done=none"
    made = await client.post(
        "/gallery/album",
        data={"image_ids": ids[:2], "album_id": "new", "new_album": "Picks", "csrf_token": token},
    )
    assert made.status_code == 303
    album_id = re.fullmatch(r"/a/([0-9a-f-]+)\?done=added", made.headers["location"])
    assert album_id
    a = f"/a/{album_id.group(1)}"
    page = await client.get(made.headers["location"])
    assert "Added to the album." in page.text
    assert [i for i in ids if i in page.text] == ids[:2]
    # The third joins from its own page; then the owner's controls.
    joined = await post_form(client, f"/i/{ids[2]}/album", token, album_id=album_id.group(1))
    assert joined.headers["location"] == f"/i/{ids[2]}?done=added"
    assert (await post_form(client, f"{a}/cover", token, image_id=ids[2])).status_code == 303
    assert (await post_form(client, f"{a}/remove", token, image_id=ids[0])).status_code == 303
    renamed = await post_form(client, f"{a}/edit", token, title="Best", visibility="private")
    assert renamed.status_code == 303
    album = (await client.get(f"{albums.ALBUMS}/{album_id.group(1)}", headers=owner.headers)).json()
    assert (album["title"], album["visibility"], album["cover_image_id"]) == (
        "Best",
        "private",
        ids[2],
    )
    assert [image["id"] for image in album["images"]] == [ids[1], ids[2]]
    listing = await client.get("/albums")
    assert "Best" in listing.text
    assert f"{ids[2]}/thumbnail?size=medium" in listing.text  # its cover
    bad = await post_form(client, f"{a}/edit", token, title="", visibility="private")
    assert bad.status_code == 422
    assert "Title" in bad.text
    gone = await post_form(client, f"{a}/delete", token, with_images="on")
    assert gone.headers["location"] == "/albums?done=deleted"
    await _not_found(client, a)
    for image_id in ids[1:]:
        assert (await client.get(f"{IMAGES}/{image_id}")).status_code == 404
    assert (await client.get(f"{IMAGES}/{ids[0]}")).status_code == 200  # it had left


async def test_the_selection_changes_visibility_and_deletes(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    ids = [await _image(client, owner, f"{name}.png") for name in ("a", "b", "c")]
    token = await sign_in(client, owner)
    private = await client.post(
        "/gallery/visibility",
        data={
            "image_ids": ids[:2],
            "visibility": "private",
            "back": "/gallery?q=a",
            "csrf_token": token,
        },
    )
    assert private.headers["location"] == "/gallery?q=a&done=private"
    for image_id in ids[:2]:
        assert (await client.get(f"{IMAGES}/{image_id}")).status_code == 404
    expiring = await client.post(
        "/gallery/expiry",
        data={"image_ids": ids[1:], "expiry": "604800", "csrf_token": token},
    )
    assert expiring.headers["location"] == "/gallery?done=expiry"
    expiries = [
        (await client.get(f"{IMAGES}/{image_id}", headers=owner.headers)).json()["expires_at"]
        for image_id in ids
    ]
    assert expiries[0] is None
    assert expiries[1] is not None
    assert expiries[1][:13] == expiries[2][:13]  # a week from now, both
    kept = await client.post(
        "/gallery/expiry", data={"image_ids": ids[1:], "expiry": "keep", "csrf_token": token}
    )
    assert kept.status_code == 422
    assert "Expiry: choose one of the options" in kept.text
    deleted = await client.post(
        "/gallery/delete",
        data={"image_ids": ids[1:], "back": "https://evil.example/", "csrf_token": token},
    )
    assert deleted.headers["location"] == "/gallery?deleted=2"
    assert "2 images were deleted." in (await client.get(deleted.headers["location"])).text
    listed = (await client.get(IMAGES, headers=owner.headers)).json()["items"]
    assert [image["id"] for image in listed] == [ids[0]]
    tampered = await client.post(
        "/gallery/delete", data={"image_ids": ["not-an-id"], "csrf_token": token}
    )
    assert tampered.status_code == 422


async def test_albums_and_the_gallery_need_a_session(client: httpx.AsyncClient) -> None:
    for path, back in (("/albums", "/albums"), ("/gallery?tag=sea", "/gallery%3Ftag%3Dsea")):
        answer = await client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next={back}"


async def test_an_album_pages_its_images_with_load_more(client: httpx.AsyncClient) -> None:
    owner = await flows.register(client)
    ids = await albums.upload_many(client, owner, 25)
    album = await albums.create(client, owner, title="Many")
    assert (await albums.put_images(client, owner, album["id"], ids)).is_success

    def tiles(page: httpx.Response) -> list[str]:
        return re.findall(r'<li class="tile" data-image-id="([0-9a-f-]+)"', page.text)

    first = await client.get(f"/a/{album['id']}")
    assert tiles(first) == ids[:24]  # album order
    more = re.search(r'hx-get="(/a/[^"]+/more\?cursor=[^"]+)"', first.text)
    assert more
    rest = await client.get(html.unescape(more.group(1)))
    assert tiles(rest) == ids[24:]
    assert "Load more" not in rest.text
    assert "Make cover" not in rest.text  # a visitor gets no controls
