"""The mixed-workload load test and fault drills, with a ledger that checks "nothing lost".

    uv run python -m bench.mixed_load --cluster            # against `make cluster`
    uv run python -m bench.mixed_load --embedded           # `make run`'s shape, started here
    uv run python -m bench.mixed_load --cluster --drill api --drill worker \\
        --drill redis --drill replica                       # one load phase per drill

The seed's mix, view 3 : download 3 : upload 1 : list 1, plus thumbnails 1 and deletes
1/4 (so that the delete invariant is exercised). Half the uploads are a user's (API key),
half anonymous (delete token). Every write is followed by a read of its own result: an
upload must be visible at once (and in the owner's listing), a delete gone at once,
whichever API replica and database copy answers.

A drill kills a component (SIGKILL to its process group) a third of the way into its
phase and starts it again at two thirds. Afterwards the ledger is checked against the
contract's invariants:

1. every 201 upload not deleted is downloadable byte-identical, from every API replica;
2. every 204 delete is gone from every API replica (metadata, file, thumbnail), from the
   object store and from the primary and replica databases;
3. every remaining image's thumbnails become ready;
4. `chitram reconcile --dry-run` finds nothing to repair.

Bounded: `--duration` seconds and `--max-requests` per phase; loopback targets only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image as PILImage

from app.config import Settings
from app.models.blob import object_key
from app.storage.factory import build_storage
from cluster.control import Cluster, run_chitram

WEIGHTS = {"view": 3, "download": 3, "upload": 1, "list": 1, "thumbnail": 1, "delete": 0.25}
DRILLS = {  # drill name: the components it kills
    "api": ["api-1"],
    "worker": ["worker-1", "worker-2"],
    "redis": ["redis"],
    "replica": ["postgres-replica"],
}
SEED_IMAGES = 40
THUMBNAIL_DEADLINE = 180.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Upload:
    id: str
    sha256: str
    owned: bool
    delete_token: str | None


@dataclass
class Phase:
    name: str
    started: float = 0.0
    seconds: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[dict[str, Any]] = field(default_factory=list)
    rw_violations: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        total = sum(len(v) for v in self.latencies.values())
        ops = {}
        for op, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            ops[op] = {
                "requests": len(values),
                "p50_ms": _pct(ordered, 50),
                "p95_ms": _pct(ordered, 95),
                "p99_ms": _pct(ordered, 99),
                "statuses": dict(self.statuses[op]),
            }
        every = sorted(v for values in self.latencies.values() for v in values)
        error_times = [e["t"] for e in self.errors]
        return {
            "phase": self.name,
            "seconds": round(self.seconds, 1),
            "requests": total,
            "throughput_rps": round(total / self.seconds, 1) if self.seconds else 0,
            "p50_ms": _pct(every, 50),
            "p95_ms": _pct(every, 95),
            "p99_ms": _pct(every, 99),
            "errors": len(self.errors),
            "error_window_s": [min(error_times), max(error_times)] if error_times else None,
            "error_samples": self.errors[:5],
            "read_your_writes_violations": self.rw_violations[:20],
            "events": self.events,
            "ops": ops,
        }


def _pct(ordered: list[float], pct: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))], 1)


class Ledger:
    """Every upload answered 201 and every delete answered 204."""

    def __init__(self) -> None:
        self.uploads: dict[str, Upload] = {}
        self.deleted: set[str] = set()
        self.live: list[str] = []  # read targets: uploaded, not (being) deleted
        self.deleting: set[str] = set()

    def take_for_delete(self) -> Upload | None:
        if len(self.live) < SEED_IMAGES // 2:
            return None
        image_id = self.live.pop(random.randrange(len(self.live)))
        self.deleting.add(image_id)
        return self.uploads[image_id]


class Load:
    def __init__(self, url: str, concurrency: int, api_key: str, ledger: Ledger) -> None:
        self.url = url
        self.concurrency = concurrency
        self.api_key = api_key
        self.ledger = ledger
        self.client = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.phase = Phase("setup")
        self.sent = 0

    async def close(self) -> None:
        await self.client.aclose()

    # ---- one request --------------------------------------------------------------------

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...],
        tolerate: Callable[[httpx.Response], bool] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        started = time.perf_counter()
        self.sent += 1
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self._record(op, "exception", started, f"{type(exc).__name__}: {exc}")
            return None
        ok = response.status_code in expect or (tolerate is not None and tolerate(response))
        detail = None if ok else response.text[:200]
        self._record(op, str(response.status_code), started, detail)
        return response

    def _record(self, op: str, status: str, started: float, error: str | None) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        phase = self.phase
        phase.latencies[op].append(elapsed)
        phase.statuses[op][status] += 1
        if error is not None:
            t = round(time.monotonic() - phase.started, 2)
            phase.errors.append({"t": t, "op": op, "status": status, "detail": error})

    def _auth(self, owned: bool) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if owned else {}

    # ---- the operations -----------------------------------------------------------------

    async def upload(self, owned: bool) -> None:
        payload = _unique_png()
        response = await self._call(
            "upload",
            "POST",
            "/api/v1/images/upload",
            expect=(201,),
            files={"file": (f"load-{uuid.uuid4().hex[:8]}.png", payload, "image/png")},
            headers=self._auth(owned),
        )
        if response is None or response.status_code != 201:
            return
        body = response.json()
        upload = Upload(
            body["id"], hashlib.sha256(payload).hexdigest(), owned, body.get("delete_token")
        )
        self.ledger.uploads[upload.id] = upload
        # Read your own write: at once, whichever replica and database copy answers.
        seen = await self._call("check", "GET", f"/api/v1/images/{upload.id}", expect=(200,))
        if seen is None or seen.status_code != 200:
            self._violation("upload not visible to its uploader", upload.id, seen)
        if owned:
            listing = await self._call(
                "check", "GET", "/api/v1/images", expect=(200,),
                params={"limit": 100}, headers=self._auth(True),
            )  # fmt: skip
            ids = {item["id"] for item in listing.json()["items"]} if listing else set()
            if listing is None or upload.id not in ids:
                self._violation("upload missing from its owner's listing", upload.id, listing)
        self.ledger.live.append(upload.id)

    async def delete(self) -> None:
        upload = self.ledger.take_for_delete()
        if upload is None:
            return
        kwargs: dict[str, Any] = (
            {"headers": self._auth(True)}
            if upload.owned
            else {"params": {"delete_token": upload.delete_token}}
        )
        response = await self._call(
            "delete", "DELETE", f"/api/v1/images/{upload.id}", expect=(204,), **kwargs
        )
        if response is None or response.status_code != 204:
            # Unknown outcome: checked at the end as "deleted or intact", never read again.
            return
        self.ledger.deleted.add(upload.id)
        gone = await self._call("check", "GET", f"/api/v1/images/{upload.id}", expect=(404,))
        if gone is None or gone.status_code != 404:
            self._violation("delete still visible to its deleter", upload.id, gone)
        if upload.owned:
            listing = await self._call(
                "check", "GET", "/api/v1/images", expect=(200,),
                params={"limit": 100}, headers=self._auth(True),
            )  # fmt: skip
            if listing is not None and upload.id in {i["id"] for i in listing.json()["items"]}:
                self._violation("delete still in its owner's listing", upload.id, listing)

    def _violation(self, what: str, image_id: str, response: httpx.Response | None) -> None:
        status = response.status_code if response is not None else "exception"
        self.phase.rw_violations.append({"what": what, "id": image_id, "status": status})

    async def read(self, op: str) -> None:
        if not self.ledger.live:
            return
        image_id = random.choice(self.ledger.live)

        def being_deleted(response: httpx.Response) -> bool:
            # Picked before a delete of it was sent: its 404 is the right answer.
            return response.status_code == 404 and image_id in self.ledger.deleting

        if op == "view":
            path = f"/api/v1/images/{image_id}"
        elif op == "download":
            path = f"/api/v1/images/{image_id}/file"
        else:  # a pending thumbnail answers 404 THUMBNAIL_NOT_READY: not an error
            path = f"/api/v1/images/{image_id}/thumbnail?size=small"
        expect = (200, 404) if op == "thumbnail" else (200,)
        await self._call(op, "GET", path, expect=expect, tolerate=being_deleted)

    async def listing(self) -> None:
        await self._call(
            "list", "GET", "/api/v1/images", expect=(200,),
            params={"limit": 20}, headers=self._auth(True),
        )  # fmt: skip

    # ---- a phase ------------------------------------------------------------------------

    async def run_phase(
        self, name: str, duration: float, max_requests: int, drill: list[str] | None,
        cluster: Cluster | None,
    ) -> Phase:  # fmt: skip
        phase = self.phase = Phase(name, started=time.monotonic())
        deadline = phase.started + duration
        budget = self.sent + max_requests
        ops, weights = zip(*WEIGHTS.items(), strict=True)

        async def user() -> None:
            while time.monotonic() < deadline and self.sent < budget:
                op = random.choices(ops, weights)[0]
                if op == "upload":
                    await self.upload(owned=random.random() < 0.5)
                elif op == "delete":
                    await self.delete()
                elif op == "list":
                    await self.listing()
                else:
                    await self.read(op)

        drill_task = None
        if drill and cluster is not None:
            drill_task = asyncio.create_task(self._drill(phase, drill, cluster, duration))
        await asyncio.gather(*(user() for _ in range(self.concurrency)))
        phase.seconds = time.monotonic() - phase.started
        if drill_task is not None:
            await drill_task
        return phase

    async def _drill(
        self, phase: Phase, components: list[str], cluster: Cluster, duration: float
    ) -> None:
        def event(what: str) -> None:
            phase.events.append((round(time.monotonic() - phase.started, 2), what))

        await asyncio.sleep(duration / 3)
        for name in components:
            event(f"SIGKILL {name}")
            await asyncio.to_thread(cluster.kill, name)
        await asyncio.sleep(duration / 3)
        for name in components:
            event(f"start {name}")
            await asyncio.to_thread(cluster.start, name)
            event(f"{name} ready")


def _unique_png() -> bytes:
    side = random.randint(48, 160)
    image = PILImage.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# ---- after the load: the invariants --------------------------------------------------------


async def verify(
    ledger: Ledger, url: str, api_urls: list[str], env: dict[str, str]
) -> dict[str, Any]:
    """Check the ledger against the contract's invariants; each list names the offenders."""
    live = [u for i, u in ledger.uploads.items() if i not in ledger.deleted]
    async with httpx.AsyncClient(timeout=30) as client:
        thumbnails_not_ready = await _wait_thumbnails(client, url, [u.id for u in live])
        not_identical: list[str] = []
        deleted_still_served: list[str] = []
        for base in api_urls:
            for chunk in _chunks([u for u in live if u.id not in ledger.deleting], 32):
                results = await asyncio.gather(
                    *(client.get(f"{base}/api/v1/images/{u.id}/file") for u in chunk)
                )
                for upload, response in zip(chunk, results, strict=True):
                    digest = hashlib.sha256(response.content).hexdigest()
                    if response.status_code != 200 or digest != upload.sha256:
                        not_identical.append(f"{upload.id} via {base}: {response.status_code}")
            for image_id in ledger.deleted:
                for suffix in ("", "/file", "/thumbnail?size=small"):
                    response = await client.get(f"{base}/api/v1/images/{image_id}{suffix}")
                    if response.status_code != 404:
                        deleted_still_served.append(f"{image_id}{suffix} via {base}")
    deleted = [ledger.uploads[i] for i in ledger.deleted]
    objects_left, rows_left = await _deleted_in_stores(env, deleted)
    report = await asyncio.to_thread(_reconcile, env)
    return {
        "uploads_accepted": len(ledger.uploads),
        "deletes_accepted": len(ledger.deleted),
        "not_byte_identical": not_identical,
        "deleted_still_served": deleted_still_served,
        "deleted_objects_left": objects_left,
        "deleted_rows_left": rows_left,
        "thumbnails_not_ready": thumbnails_not_ready,
        "reconcile_clean": bool(report.get("clean")),
        "reconcile": {k: v for k, v in report.items() if v},
    }


async def _wait_thumbnails(client: httpx.AsyncClient, url: str, ids: list[str]) -> list[str]:
    waiting = set(ids)
    deadline = time.monotonic() + THUMBNAIL_DEADLINE
    while waiting and time.monotonic() < deadline:
        for chunk in _chunks(sorted(waiting), 32):
            results = await asyncio.gather(*(client.get(f"{url}/api/v1/images/{i}") for i in chunk))
            for image_id, response in zip(chunk, results, strict=True):
                if response.status_code == 200 and response.json()["thumbnail_status"] == "ready":
                    waiting.discard(image_id)
        if waiting:
            await asyncio.sleep(1.0)
    return sorted(waiting)


async def _deleted_in_stores(
    env: dict[str, str], deleted: list[Upload]
) -> tuple[list[str], list[str]]:
    """Objects of deleted images still stored; their rows still in any database copy."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.models import Image

    overrides: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    settings = Settings(_env_file=None, **overrides)
    storage = await build_storage(settings)
    try:
        objects_left = [u.id for u in deleted if await storage.stat(object_key(u.sha256))]
    finally:
        await storage.close()
    rows_left: list[str] = []
    ids = [uuid.UUID(u.id) for u in deleted] or [uuid.uuid4()]
    query = select(Image.id).where(Image.id.in_(ids))  # typed: SQLite stores UUIDs as hex
    for db_url in (settings.resolved_database_url, *settings.database_read_urls):
        engine = create_async_engine(db_url)
        try:
            for _ in range(50):  # a replica may still be replaying the last deletes
                async with engine.connect() as conn:
                    found = [str(r[0]) for r in await conn.execute(query)]
                if not found:
                    break
                await asyncio.sleep(0.2)
            rows_left += [f"{i} in {urlsplit(db_url).port or 'sqlite'}" for i in found]
        finally:
            await engine.dispose()
    return objects_left, rows_left


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---- the command ---------------------------------------------------------------------------


async def run(
    args: argparse.Namespace,
    url: str,
    api_urls: list[str],
    env: dict[str, str],
    cluster: Cluster | None,
) -> dict[str, Any]:
    """The phases (one per drill, or one steady), then the invariants; loopback only."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to load {url}: loopback targets only")
    ledger = Ledger()
    async with httpx.AsyncClient(base_url=url, timeout=30) as setup:
        email = f"load-{uuid.uuid4().hex[:10]}@example.com"
        registered = await setup.post(
            "/api/v1/auth/register", json={"email": email, "password": "load-test-password"}
        )
        registered.raise_for_status()
        token = registered.json()["access_token"]
        created = await setup.post(
            "/api/v1/auth/api-keys", json={"name": "load"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        created.raise_for_status()
    load = Load(url, args.concurrency, created.json()["key"], ledger)
    phases = []
    try:
        await asyncio.gather(*(load.upload(owned=i % 2 == 0) for i in range(SEED_IMAGES)))
        for drill in args.drill or [None]:
            name = f"drill {drill}" if drill else "steady"
            components = DRILLS[drill] if drill else None
            phase = await load.run_phase(
                name, args.duration, args.max_requests, components, cluster
            )
            phases.append(phase.report())
            print(_summary(phases[-1]), file=sys.stderr)
    finally:
        await load.close()
    invariants = await verify(ledger, url, api_urls, env)
    return {"target": url, "concurrency": args.concurrency, "phases": phases,
            "invariants": invariants, "ok": _ok(phases, invariants)}  # fmt: skip


def _ok(phases: list[dict[str, Any]], invariants: dict[str, Any]) -> bool:
    broken = any(
        invariants[k]
        for k in ("not_byte_identical", "deleted_still_served", "deleted_objects_left",
                  "deleted_rows_left", "thumbnails_not_ready")
    )  # fmt: skip
    violations = any(p["read_your_writes_violations"] for p in phases)
    return not broken and not violations and invariants["reconcile_clean"]


def _summary(phase: dict[str, Any]) -> str:
    lines = [
        f"{phase['phase']}: {phase['requests']} requests in {phase['seconds']} s = "
        f"{phase['throughput_rps']} req/s; p50 {phase['p50_ms']} ms, p95 {phase['p95_ms']} ms, "
        f"p99 {phase['p99_ms']} ms; errors {phase['errors']} {phase['error_window_s'] or ''}"
    ]
    for op, figures in phase["ops"].items():
        lines.append(
            f"  {op:<9} {figures['requests']:>6}  p50 {figures['p50_ms']:>6} p95 "
            f"{figures['p95_ms']:>6} p99 {figures['p99_ms']:>6}  {figures['statuses']}"
        )
    lines += [f"  {t:>6.2f}s {what}" for t, what in phase["events"]]
    return "\n".join(lines)


def _reconcile(env: dict[str, str]) -> dict[str, Any]:
    """`chitram reconcile --dry-run` against the target, as an operator would run it."""
    result = run_chitram(env, "reconcile", "--dry-run", timeout=300)
    if result.returncode != 0:
        return {"clean": False, "error": result.stderr[-2000:]}
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@contextlib.contextmanager
def _embedded() -> Iterator[tuple[str, dict[str, str]]]:
    from bench.common import embedded_server

    limits = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_UPLOAD": "100000/minute",
        "RATE_LIMIT_READ": "1000000/minute",
        "RATE_LIMIT_AUTH": "1000/minute",
    }
    with embedded_server(**limits) as server:
        yield server.url, {"DATA_DIR": str(server.data_dir), "STORAGE_BACKEND": "local"}


def main(argv: list[str] | None = None) -> int:
    from cluster.__main__ import default_root

    parser = argparse.ArgumentParser(
        prog="python -m bench.mixed_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--cluster", action="store_true", help="the running `make cluster`")
    target.add_argument("--embedded", action="store_true", help="start make run's shape here")
    parser.add_argument("--cluster-dir", type=Path, default=default_root())
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="simulated clients")
    parser.add_argument("--drill", action="append", choices=sorted(DRILLS), help="repeatable")
    parser.add_argument("--json", type=Path, help="write the full report here")
    args = parser.parse_args(argv)
    if args.cluster:
        cluster = Cluster.load(args.cluster_dir)

        urls = cluster.api_urls()
        result = asyncio.run(run(args, cluster.url, urls, cluster.env, cluster))
    else:
        if args.drill:
            parser.error("drills need --cluster")
        with _embedded() as (url, env):
            result = asyncio.run(run(args, url, [url], env, None))
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.write_text(text)
    print(json.dumps({"ok": result["ok"], "invariants": result["invariants"]}, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
