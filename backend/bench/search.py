"""Search over one user's library: p50/p99 of `q`, `tag` and plain listing queries on
SQLite and PostgreSQL, warm, one process.

One user owns `--images` images (100,000 by default) with realistic filenames
(`IMG_20231012_142233.jpg`, `DSC04567.JPG`, `Screenshot 2024-03-01 at 10.22.31.png`,
`PXL_...`), titles and some descriptions from a word list, and 3 tags each from a
vocabulary of 200 (a few common, most rare); a second user owns `--others` more, which
the searches must skip. Rows go in directly with bulk SQL, their search text made by
`app.images.search` exactly as the repository makes it.

Each query runs `--rounds` times after a warm-up, in two ways: the repository function
behind `GET /images` (`repository.list_images`, a page of 20 as the service asks: 21
rows), and the HTTP route itself through an in-process ASGI client (auth, validation,
the page's records and JSON included).

    uv run python -m bench.search                                   # both databases
    uv run python -m bench.search --database sqlite --images 20000 --rounds 50

Targets (issue 16): p99 < 50 ms on PostgreSQL and < 100 ms on SQLite for `q` and `tag`
queries; plain listing pages as fast as before search existed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import Connection, insert, select, text

from app.config import Settings
from app.images import repository
from app.images.cache import tags_json_of
from app.images.cursor import encode_cursor
from app.images.search import Filters, query_words, search_text_of
from app.infra.db import Database, RunAsync
from app.main import create_app
from app.models import Blob, Image, ImageTag, Thumbnail
from app.ops.cli import migrate
from bench.common import (
    describe_code,
    machine_info,
    print_table,
    timestamp,
    write_results,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "chitram_bench_search"
PAGE = 20
BATCH = 5_000
TARGET_MS = {"sqlite": 100.0, "postgresql": 50.0}

_WORD_LIST = """
sunset beach mountain lake river forest city street night morning evening family
birthday party wedding holiday vacation trip travel summer winter autumn spring snow
rain cloud sky sea ocean wave harbour boat bridge tower castle church museum garden
park flower tree leaf grass field farm horse dog cat bird puppy kitten baby child
friends dinner lunch breakfast coffee cake pizza market festival concert music dance
game football match stadium school office meeting project design sketch drawing
painting portrait landscape macro detail texture pattern light shadow reflection
window door road car bike train station airport plane hotel room kitchen home house
building architecture skyline downtown village island desert canyon valley hill peak
trail hike camp tent fire star moon sun dawn dusk fog storm lightning rainbow
waterfall glacier volcano cave rock sand shell fish coral reef diving surf sail kayak
canoe fishing hunting picnic barbecue graduation anniversary reunion christmas easter
halloween newyear carnival parade fireworks lantern temple shrine palace fountain
statue monument ruins gallery exhibition library bookshop cafe bakery restaurant bar
pub vineyard orchard meadow prairie tundra jungle rainforest savanna safari zoo
aquarium circus theatre cinema studio workshop factory warehouse garage attic
basement balcony terrace rooftop courtyard alley tunnel pier lighthouse marina dock
zebra giraffe elephant lion tiger bear wolf fox deer rabbit squirrel owl eagle parrot
"""
WORDS = _WORD_LIST.split()
TAG_VOCABULARY = [
    *WORDS[:160],
    *(f"{a} {b}" for a, b in zip(WORDS[160:200], WORDS[1:41], strict=True)),
]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # q | tag | plain
    filters: Filters
    params: dict[str, Any]
    deep: bool = False  # from the middle of the listing (a cursor 50 % down)


# Zipf: the n-th tag is used 1/n as often as the first (on about 45 % of the images);
# the 150th is on about 300 of 100,000.
_TAG_WEIGHTS = [1 / rank for rank in range(1, len(TAG_VOCABULARY) + 1)]


def _zipf_pick(rng: random.Random, k: int) -> list[str]:
    chosen: dict[str, None] = {}
    while len(chosen) < k:
        chosen.update(dict.fromkeys(rng.choices(TAG_VOCABULARY, _TAG_WEIGHTS, k=k - len(chosen))))
    return list(chosen)


def _filename(rng: random.Random, moment: datetime, n: int) -> str:
    kind = rng.random()
    if kind < 0.40:
        return moment.strftime("IMG_%Y%m%d_%H%M%S.jpg")
    if kind < 0.60:
        return f"DSC{rng.randrange(10_000):05d}.JPG"
    if kind < 0.80:
        return moment.strftime("Screenshot %Y-%m-%d at %H.%M.%S.png")
    if kind < 0.90:
        return moment.strftime("PXL_%Y%m%d_%H%M%S") + f"{rng.randrange(1000):03d}.jpg"
    return f"{'-'.join(rng.sample(WORDS, 2))}-{n % 50}.jpg"


def library(
    rng: random.Random, owner: uuid.UUID, count: int, start: datetime
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """`count` image rows of `owner` (oldest first) and their tag rows."""
    moment = start
    for n in range(count):
        if rng.random() > 0.02:  # some uploads land in the same microsecond
            moment += timedelta(seconds=rng.randrange(1, 1800), microseconds=rng.randrange(10**6))
        title = " ".join(rng.sample(WORDS, rng.randint(1, 4))).capitalize()
        description = " ".join(rng.choices(WORDS, k=rng.randint(5, 12)))
        tags = sorted(_zipf_pick(rng, 3))
        image_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        filename = _filename(rng, moment, n)
        row: dict[str, Any] = {
            "id": image_id,
            "blob_sha256": f"{image_id.hex}{image_id.hex}",
            "filename": filename,
            "content_type": "image/jpeg",
            "file_size": 2_000_000,
            "width": 4000,
            "height": 3000,
            "frames": 1,
            "owner_id": owner,
            "thumbnail_status": "ready",
            "thumbnail_attempts": 1,
            "thumbnail_updated_at": moment,
            "created_at": moment,
            "visibility": "unlisted",
            "title": title if rng.random() < 0.6 else None,
            "description": description if rng.random() < 0.2 else None,
            "tags_json": tags_json_of(tags, []),
            "tags_status": "ready",
            "tags_attempts": 1,
            "tags_updated_at": moment,
        }
        row["search_text"] = search_text_of(filename, row["title"], row["description"], tags)
        tag_rows = [
            {"image_id": image_id, "source": "user", "name": tag, "owner_id": owner} for tag in tags
        ]
        yield row, tag_rows


def _insert_batch(
    connection: Connection, rows: list[dict[str, Any]], tags: list[dict[str, Any]]
) -> None:
    blobs = [
        {"sha256": r["blob_sha256"], "size": r["file_size"], "content_type": "image/jpeg"}
        for r in rows
    ]
    now = datetime.now(UTC)
    connection.execute(insert(Blob), [{**b, "created_at": now} for b in blobs])
    connection.execute(
        insert(Thumbnail),
        [
            {
                "blob_sha256": r["blob_sha256"],
                "size": size,
                "sha256": r["blob_sha256"],
                "file_size": 10_000,
                "width": 150,
                "height": 100,
                "created_at": now,
            }
            for r in rows
            for size in ("small", "medium", "large")
        ],
    )
    connection.execute(insert(Image), rows)
    connection.execute(insert(ImageTag), tags)


async def fill(database: Database, owner: uuid.UUID, count: int, seed: int) -> None:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    start = datetime(2023, 1, 1, tzinfo=UTC)
    for row, tag_rows in library(rng, owner, count, start):
        rows.append(row)
        tags += tag_rows
        if len(rows) == BATCH:
            await database.write(_unit(rows, tags))
            rows, tags = [], []
    if rows:
        await database.write(_unit(rows, tags))


def _unit(
    rows: list[dict[str, Any]], tags: list[dict[str, Any]]
) -> Callable[[Connection, RunAsync], None]:
    def work(connection: Connection, _run_async: RunAsync) -> None:
        _insert_batch(connection, rows, tags)

    return work


def cases() -> list[Case]:
    """The queries measured: common and rare words, one and two of them, tags."""
    found = [
        ("q common prefix 'img'", "img"),
        ("q one-letter prefix 's'", "s"),
        ("q common word 'sunset'", "sunset"),
        ("q word in 1 % 'lighthouse'", "lighthouse"),
        ("q rare prefix 'zeb'", "zeb"),
        ("q rare filename prefix 'dsc0456'", "dsc0456"),
        ("q common but old '2023'", "2023"),
        ("q two words 'sunset beach'", "sunset beach"),
        ("q two words 'img 2024'", "img 2024"),
        ("q two rare words 'zebra owl'", "zebra owl"),
        ("q no match 'qqqq'", "qqqq"),
    ]
    common, rare = TAG_VOCABULARY[0], TAG_VOCABULARY[150]
    runs = [Case(name, "q", Filters(words=query_words(q)), {"q": q}) for name, q in found]
    runs += [
        Case(
            "q 'sunset' oldest first",
            "q",
            Filters(words=("sunset",), sort="oldest"),
            {"q": "sunset", "sort": "oldest"},
        ),
        Case(f"tag common '{common}'", "tag", Filters(tags=(common,)), {"tag": common}),
        Case(f"tag rare '{rare}'", "tag", Filters(tags=(rare,)), {"tag": rare}),
        Case(
            f"tags two '{common}' + '{TAG_VOCABULARY[1]}'",
            "tag",
            Filters(tags=(common, TAG_VOCABULARY[1])),
            {"tag": [common, TAG_VOCABULARY[1]]},
        ),
        Case(
            f"tag '{common}' + q 'img'",
            "tag",
            Filters(words=("img",), tags=(common,)),
            {"tag": common, "q": "img"},
        ),
        Case("plain first page", "plain", Filters(), {}),
        Case("plain page halfway down", "plain", Filters(), {}, deep=True),
    ]
    return runs


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


async def timed(run: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    for _ in range(max(3, rounds // 10)):  # warm: caches, plans, pages
        await run()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _pg_recreate() -> str:
    connection = await asyncpg.connect(PG_ADMIN)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await connection.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{PG_DATABASE}"


async def measure(kind: str, args: argparse.Namespace, data_dir: Path) -> list[dict[str, Any]]:
    url = await _pg_recreate() if kind == "postgresql" else None
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=url,
        rate_limit_enabled=False,
        jwt_secret="bench-search-" + "x" * 64,
        environment="test",
        log_level="WARNING",
        cpu_workers=1,  # nothing here makes thumbnails
    )
    await asyncio.to_thread(migrate, settings)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=120) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            registered = await client.post(
                "/api/v1/auth/register",
                json={"email": f"bench-{kind}@example.com", "password": "correct horse battery"},
            )
            registered.raise_for_status()
            owner = uuid.UUID(registered.json()["user"]["id"])
            headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            other = await client.post(
                "/api/v1/auth/register",
                json={"email": f"other-{kind}@example.com", "password": "correct horse battery"},
            )
            other_id = uuid.UUID(other.json()["user"]["id"])

            database = Database(settings.resolved_database_url)
            started = time.perf_counter()
            await fill(database, owner, args.images, seed=1)
            await fill(database, other_id, args.others, seed=2)
            if kind == "postgresql":  # what autovacuum would have done after such a load
                async with database.engine.connect() as connection:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                    await connection.execute(text("VACUUM ANALYZE"))
            print(
                f"{kind}: {args.images:,} + {args.others:,} images in "
                f"{time.perf_counter() - started:.0f} s"
            )
            results = []
            for case in cases():
                results.append(await _measure_case(case, database, client, headers, owner, args))
                _print_row(results[-1])
            for prefix in ("", "s"):
                results.append(await _measure_tags(prefix, database, client, headers, owner, args))
                _print_row(results[-1])
            await database.dispose()
    return results


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"  {row['case']:<40} repo p50 {row['repository_p50_ms']:6.1f} "
        f"p99 {row['repository_p99_ms']:6.1f}   http p50 {row['http_p50_ms']:6.1f} "
        f"p99 {row['http_p99_ms']:6.1f}   ({row['found']} found)"
    )


async def _measure_tags(
    prefix: str,
    database: Database,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    owner: uuid.UUID,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """GET /tags: the user's tags by count (every tag row of theirs is read)."""

    async def through_repository() -> int:
        async with database.reader() as session:
            counts = await repository.tag_counts(session, owner, prefix, 100, datetime.now(UTC))
        return len(counts)

    async def through_http() -> None:
        params = {"prefix": prefix} if prefix else {}
        response = await client.get("/api/v1/tags", params=params, headers=headers)
        response.raise_for_status()

    found = await through_repository()
    repo_p50, repo_p99 = percentiles(await timed(through_repository, args.rounds // 4))
    http_p50, http_p99 = percentiles(await timed(through_http, args.rounds // 4))
    return {
        "case": f"GET /tags{f'?prefix={prefix}' if prefix else ''}",
        "kind": "tags",
        "found": found,
        "repository_p50_ms": round(repo_p50, 2),
        "repository_p99_ms": round(repo_p99, 2),
        "http_p50_ms": round(http_p50, 2),
        "http_p99_ms": round(http_p99, 2),
    }


async def _measure_case(
    case: Case,
    database: Database,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    owner: uuid.UUID,
    args: argparse.Namespace,
) -> dict[str, Any]:
    before: tuple[datetime, uuid.UUID] | None = None
    cursor: str | None = None
    if case.deep:  # the keyset of the image halfway down the listing
        async with database.reader() as session:
            middle = await session.execute(
                select(Image.created_at, Image.id)
                .where(Image.owner_id == owner)
                .order_by(Image.created_at.desc(), Image.id.desc())
                .offset(args.images // 2)
                .limit(1)
            )
            created_at, image_id = middle.one()
            [last] = await repository.list_images(session, owner, (created_at, image_id), 1)
        before = (last.created_at, last.id)
        cursor = encode_cursor(last, case.filters.sort)

    async def through_repository() -> int:
        async with database.reader() as session:
            page = await repository.list_images(
                session, owner, before, PAGE + 1, case.filters, datetime.now(UTC)
            )
        return len(page)

    async def through_http() -> None:
        params = {**case.params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/images", params=params, headers=headers)
        response.raise_for_status()

    found = await through_repository()
    repo_p50, repo_p99 = percentiles(await timed(through_repository, args.rounds))
    http_p50, http_p99 = percentiles(await timed(through_http, args.rounds))
    return {
        "case": case.name,
        "kind": case.kind,
        "found": min(found, PAGE),
        "repository_p50_ms": round(repo_p50, 2),
        "repository_p99_ms": round(repo_p99, 2),
        "http_p50_ms": round(http_p50, 2),
        "http_p99_ms": round(http_p99, 2),
    }


def _verdict(row: dict[str, Any], target: float) -> str:
    if row["kind"] not in ("q", "tag"):
        return "-"  # no target of its own
    return "yes" if row["http_p99_ms"] < target else "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--images", type=int, default=100_000, help="the user's images")
    parser.add_argument("--others", type=int, default=20_000, help="another user's images")
    parser.add_argument("--rounds", type=int, default=200, help="timed runs of each query")
    args = parser.parse_args()
    kinds = args.database or ["sqlite", "postgresql"]
    results: dict[str, Any] = {
        "benchmark": "search",
        "started_at": timestamp(),
        "machine": machine_info(),
        "images": args.images,
        "others": args.others,
        "rounds": args.rounds,
        "databases": {},
    }
    print(describe_code(results["machine"]["code"]))
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
            results["databases"][kind] = asyncio.run(measure(kind, args, Path(tmp)))
    for kind, rows in results["databases"].items():
        print(f"\n{kind} ({args.images:,} images; target p99 < {TARGET_MS[kind]:.0f} ms)")
        print_table(
            ["query", "found", "repo p50", "repo p99", "http p50", "http p99", "ok"],
            [
                [
                    row["case"],
                    str(row["found"]),
                    f"{row['repository_p50_ms']:.1f}",
                    f"{row['repository_p99_ms']:.1f}",
                    f"{row['http_p50_ms']:.1f}",
                    f"{row['http_p99_ms']:.1f}",
                    _verdict(row, TARGET_MS[kind]),
                ]
                for row in rows
            ],
        )
    print(f"\nwritten to {write_results('search', results)}")


if __name__ == "__main__":
    main()
