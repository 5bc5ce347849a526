"""Search, tag filters, albums, sorting and pages of GET /images, and GET /tags
(contract section 11), on SQLite and PostgreSQL."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.images import repository
from app.images.search import fts5_query, query_words, search_text_of, tsquery, words_of
from tests.library.search_flows import (
    TAGS,
    found,
    new_image,
    patch_ok,
    search,
    set_columns,
    tags_of,
    write,
)
from tests.support.flows import register

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """No automatic tags: these tests count and search the tags they set themselves."""
    return {"tagger": "none"}


# ---- the tokeniser (pure) -----------------------------------------------------------


def test_words_are_runs_of_letters_digits_and_marks() -> None:
    assert words_of("IMG_20231012_142233.jpg") == ["img", "20231012", "142233", "jpg"]
    assert words_of("Screenshot 2024-03-01 at 10.22.31.png") == [
        *("screenshot", "2024", "03", "01", "at", "10", "22", "31", "png")
    ]
    assert words_of("Café 日本語の写真") == ["café", "日本語の写真"]
    assert words_of("\uff29\uff2d\uff27") == ["img"]  # full-width IMG: NFKC
    assert words_of("हिन्दी") == ["हिन्दी"]  # vowel signs are marks, inside the word
    assert words_of("\x00\"*'()<>") == []
    assert words_of("x" * 2000) == ["x" * 64]  # PostgreSQL refuses lexemes of 2 KB


def test_query_words_drop_what_a_longer_word_implies() -> None:
    assert query_words("Sun SUNSET sunset beach b") == ("beach", "sunset")
    assert query_words(None) == ()
    assert query_words('" * NEAR( AND OR NOT )') == ("and", "near", "not", "or")


def test_queries_hold_no_syntax_of_the_databases() -> None:
    words = query_words('a"b NEAR(c d) e* -f "')
    assert fts5_query(words) == '"a"* "b"* "c"* "d"* "e"* "f"* "near"*'
    assert tsquery(("o", "ab")) == "'o':* & 'ab':*"
    assert search_text_of("A.png", "a b", None, ["b c", "new york"]) == "a png b c new york"


# ---- q ----------------------------------------------------------------------------


async def test_q_matches_filename_title_description_and_tags(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    by_name = await new_image(client, owner, "IMG_20231012_142233.jpg")
    by_title = await new_image(client, owner, title="Sunset over the Bay")
    by_text = await new_image(client, owner, description="A quiet morning, mist on the lake")
    by_tag = await new_image(client, owner, tags=["Bay Area", "holiday"])

    assert await found(client, owner, q="img") == [by_name["id"]]
    assert await found(client, owner, q="20231012") == [by_name["id"]]
    assert await found(client, owner, q="sunset") == [by_title["id"]]
    assert await found(client, owner, q="mist") == [by_text["id"]]
    assert await found(client, owner, q="holiday") == [by_tag["id"]]
    # Newest first; "bay" is in one title and one tag.
    assert await found(client, owner, q="bay") == [by_tag["id"], by_title["id"]]


async def test_q_words_are_prefixes_all_required_any_case(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    both = await new_image(client, owner, title="Sunset on the beach")
    one = await new_image(client, owner, title="Sunset in town")
    assert set(await found(client, owner, q="SUN")) == {both["id"], one["id"]}
    assert await found(client, owner, q="sun bea") == [both["id"]]
    assert await found(client, owner, q="beach SUNSET") == [both["id"]]
    assert await found(client, owner, q="unset") == []  # a prefix of a word, not a part
    assert await found(client, owner, q="sunset beach town") == []
    assert await found(client, owner, q="Sunset-in") == [one["id"]]  # split as stored


async def test_long_words_are_stored_and_found(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(client, owner, description="é" * 2000, title="x" * 200)
    assert await found(client, owner, q="éé") == [image["id"]]
    assert await found(client, owner, q="x" * 200) == [image["id"]]


async def test_unicode_words(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    cafe = await new_image(client, owner, title="Café au lait")
    tokyo = await new_image(client, owner, description="東京 日本", tags=["日本"])
    assert await found(client, owner, q="café") == [cafe["id"]]
    assert await found(client, owner, q="CAFÉ") == [cafe["id"]]
    assert await found(client, owner, q=unicodedata.normalize("NFD", "café")) == [cafe["id"]]
    assert await found(client, owner, q="日") == [tokyo["id"]]
    assert await found(client, owner, q="東京") == [tokyo["id"]]


async def test_changes_are_searchable_at_once(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(client, owner, title="Old words")
    await patch_ok(client, owner, image["id"], title="New words", tags=["fresh"])
    assert await found(client, owner, q="old") == []
    assert await found(client, owner, q="new fresh") == [image["id"]]
    await patch_ok(client, owner, image["id"], tags=[])
    assert await found(client, owner, q="fresh") == []
    assert await found(client, owner, q="a") == [image["id"]]  # "a.png": the filename stays


HOSTILE_QUERIES = [
    '"',
    '"unterminated',
    "*",
    "a*",
    "NEAR(a b)",
    "a AND b",
    "a OR b",
    "NOT a",
    "(a",
    "a)",
    "-a",
    "^a",
    "title:a",
    "a:*",
    "'a' & !b | c <-> d",
    "\\",
    "%_",
    "\x00",
    "a\x00b",
    "😀",
    "\u202e",
    " " * 200,
    "a" * 200,
    "a " * 100,
    "é" * 200,
]


async def test_hostile_q_never_fails(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    image = await new_image(client, owner, "a b.png")
    for q in HOSTILE_QUERIES:
        response = await search(client, owner, q=q)
        assert response.status_code == 200, (q, response.text)
        assert {item["id"] for item in response.json()["items"]} <= {image["id"]}
    assert await found(client, owner, q='"a" (b*) -png') == [image["id"]]


async def test_q_is_capped(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await search(client, owner, q="a" * 1000)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["details"]["errors"][0]["loc"] == ["query", "q"]


# ---- tag, album, other users, expiry ------------------------------------------------


async def test_tags_filter_exactly_and_all_must_match(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    cat = await new_image(client, owner, tags=["cat"])
    both = await new_image(client, owner, tags=["cat", "black cat"])
    await new_image(client, owner, tags=["cats"])
    assert await found(client, owner, tag="cat") == [both["id"], cat["id"]]
    assert await found(client, owner, tag=["cat", "black cat"]) == [both["id"]]
    assert await found(client, owner, tag=["  Black   CAT "]) == [both["id"]]  # normalised
    assert await found(client, owner, tag=["cat", "dog"]) == []
    assert await found(client, owner, tag="ca") == []  # exact, not a prefix
    assert await found(client, owner, tag="cat", q="black") == [both["id"]]


async def test_a_bad_tag_filter_is_422(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await search(client, owner, tag=["ok", "<b>"])
    assert response.status_code == 422
    [error] = response.json()["error"]["details"]["errors"]
    assert error["loc"] == ["query", "tag", 1]
    assert "<b>" in error["msg"]


async def test_album_filter(client: httpx.AsyncClient) -> None:
    owner, other = await register(client), await register(client)
    inside = await new_image(client, owner, title="sea")
    await new_image(client, owner, title="sea")
    album = await client.post("/api/v1/albums", json={"title": "Trip"}, headers=owner.headers)
    assert album.status_code == 201, album.text
    album_id = album.json()["id"]
    members = await client.put(
        f"/api/v1/albums/{album_id}/images",
        json={"image_ids": [inside["id"]]},
        headers=owner.headers,
    )
    assert members.status_code == 200, members.text
    assert await found(client, owner, album=album_id) == [inside["id"]]
    assert await found(client, owner, album=album_id, q="sea") == [inside["id"]]
    listed = (await search(client, owner, album=album_id)).json()["items"][0]
    assert listed["album_ids"] == [album_id]  # the owner's listing shows their albums

    for who, album_param in ((owner, str(uuid.uuid4())), (other, album_id)):
        response = await search(client, who, album=album_param)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ALBUM_NOT_FOUND"
    assert (await search(client, owner, album="not-an-id")).status_code == 422


async def test_other_users_images_are_never_returned(client: httpx.AsyncClient) -> None:
    owner, other = await register(client), await register(client)
    mine = await new_image(client, owner, "shared.png", title="shared", tags=["shared"])
    await new_image(client, other, "shared.png", title="shared", tags=["shared"])
    assert await found(client, owner) == [mine["id"]]
    assert await found(client, owner, q="shared") == [mine["id"]]
    assert await found(client, owner, tag="shared") == [mine["id"]]
    assert await tags_of(client, owner) == [["shared", 1]]


async def test_expired_images_leave_search_and_tags(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await register(client)
    alive = await new_image(client, owner, title="sky", tags=["sky"])
    later = await new_image(client, owner, title="sky", tags=["sky", "later"])
    gone = await new_image(client, owner, title="sky", tags=["sky", "gone"])
    await patch_ok(
        client, owner, later["id"], expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    # Expired a moment ago; the sweeper has not deleted it yet.
    await set_columns(settings, [gone["id"]], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    expected = [later["id"], alive["id"]]
    assert await found(client, owner) == expected
    assert await found(client, owner, q="sky") == expected
    assert await found(client, owner, tag="sky") == expected
    assert await found(client, owner, tag="gone") == []
    assert await tags_of(client, owner) == [["sky", 2], ["later", 1]]


async def test_listing_needs_a_caller(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/images?q=a", "/api/v1/images?tag=a", TAGS):
        response = await client.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


# ---- order and pages --------------------------------------------------------------


async def test_sort_and_pages_stay_stable_with_ties(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await register(client)
    ids = [(await new_image(client, owner, title="tie", tags=["tie"]))["id"] for _ in range(7)]
    # Five of them uploaded in the same microsecond: only the id orders those.
    tied = ids[1:6]
    await set_columns(settings, tied, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    await set_columns(settings, [ids[0]], created_at=datetime(2025, 1, 1, tzinfo=UTC))
    await set_columns(settings, [ids[6]], created_at=datetime(2027, 1, 1, tzinfo=UTC))
    oldest = [ids[0], *sorted(tied, key=lambda i: uuid.UUID(i)), ids[6]]

    for params in ({}, {"q": "tie"}, {"tag": "tie"}):
        assert await found(client, owner, sort="oldest", limit=3, **params) == oldest
        assert await found(client, owner, sort="newest", limit=3, **params) == oldest[::-1]
        assert await found(client, owner, limit=2, **params) == oldest[::-1]  # the default

    first = (await search(client, owner, sort="oldest", limit=3)).json()
    assert len(first["items"]) == 3
    refused = await search(client, owner, sort="newest", cursor=first["next_cursor"])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "INVALID_REQUEST"
    for cursor in ("garbage", "bnx8", first["next_cursor"][:-2]):
        assert (await search(client, owner, cursor=cursor)).status_code == 400
    assert (await search(client, owner, sort="random")).status_code == 422


# ---- GET /tags ----------------------------------------------------------------------


async def test_tags_by_count_then_name_with_prefix(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await register(client)
    one = await new_image(client, owner, tags=["beach", "sea", "sunset"])
    await new_image(client, owner, tags=["beach", "sea"])
    await new_image(client, owner, tags=["beach", "new york"])

    # The tagger's tags count too; one image with "sea" from both sources counts once.
    def tag_automatically(connection: object) -> None:
        assert repository.replace_tags(
            connection,  # type: ignore[arg-type]
            uuid.UUID(one["id"]),
            uuid.UUID(owner.id),
            "auto",
            ["sea", "blue"],
        )

    await write(settings, tag_automatically)
    assert await tags_of(client, owner) == [
        ["beach", 3],
        ["sea", 2],
        ["blue", 1],
        ["new york", 1],
        ["sunset", 1],
    ]
    assert await tags_of(client, owner, prefix="S") == [["sea", 2], ["sunset", 1]]
    assert await tags_of(client, owner, prefix="new ") == [["new york", 1]]
    assert await tags_of(client, owner, prefix="nope") == []
    assert await tags_of(client, owner, limit=2) == [["beach", 3], ["sea", 2]]
    for params in ({"limit": 0}, {"limit": 1001}, {"prefix": "<"}):
        response = await client.get(TAGS, params=params, headers=owner.headers)
        assert response.status_code == 422, params
    # The same word through search: auto tags are searchable.
    assert await found(client, owner, q="blue") == [one["id"]]
    assert await found(client, owner, tag="blue") == [one["id"]]


# ---- every path of the search finds the same ----------------------------------------

LIBRARY = [  # (title, tags)
    ("Sunset on the beach", ["sea"]),
    ("Sunset in town", ["city"]),
    ("Beach party", ["sea", "party"]),
    ("Mountain", []),
    ("Sunrise beach", ["sea"]),
    ("Sunset sea", ["sea", "city"]),
    ("Sunny city", ["city"]),
]
SEARCHES: list[dict[str, Any]] = [
    {"q": "sun"},
    {"q": "sunset"},
    {"q": "beach sun"},
    {"q": "zzz"},
    {"tag": "sea"},
    {"tag": ["sea", "city"]},
    {"q": "sun", "tag": "sea"},
    {"q": "sun", "sort": "oldest"},
    {"tag": "city", "sort": "oldest"},
]


def _expected(ids: list[str], params: dict[str, Any]) -> list[str]:
    """What a search must find, worked out without SQL: the oracle."""
    wanted = query_words(params.get("q"))
    tags = params.get("tag", [])
    tags = [tags] if isinstance(tags, str) else tags
    hits = []
    for image_id, (title, image_tags) in zip(ids, LIBRARY, strict=True):
        words = search_text_of("a.png", title, None, image_tags).split()
        if all(any(w.startswith(q) for w in words) for q in wanted) and set(tags) <= set(
            image_tags
        ):
            hits.append(image_id)
    # Uploaded in order, the middle three in the same microsecond: ties go by id.
    order = {
        image_id: (n if n not in (2, 3, 4) else 2, uuid.UUID(image_id))
        for n, image_id in enumerate(ids)
    }
    hits.sort(key=lambda i: order[i], reverse=params.get("sort", "newest") == "newest")
    return hits


@pytest.mark.parametrize(
    ("scan_first", "sort_at_most"),
    [(1000, 5000), (1, 5000), (2, 1), (1, 1)],
    ids=["checks", "then-sorted", "then-walk", "walk"],
)
async def test_every_search_path_finds_the_same(
    client: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    scan_first: int,
    sort_at_most: int,
) -> None:
    # SQLite's steps (app.images.repository) switch at these counts: small ones send
    # this small library down each path. PostgreSQL has one path; it runs them all too.
    monkeypatch.setattr(repository, "SCAN_FIRST", scan_first)
    monkeypatch.setattr(repository, "SORT_AT_MOST", sort_at_most)
    owner = await register(client)
    ids = [(await new_image(client, owner, title=t, tags=tags))["id"] for t, tags in LIBRARY]
    await set_columns(settings, ids[2:5], created_at=datetime(2026, 6, 1, tzinfo=UTC))
    for n, image_id in enumerate(ids):
        if n not in (2, 3, 4):
            moment = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(hours=n - 2)
            await set_columns(settings, [image_id], created_at=moment)
    for params in SEARCHES:
        assert await found(client, owner, limit=2, **params) == _expected(ids, params), params
