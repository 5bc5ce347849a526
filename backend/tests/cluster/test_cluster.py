"""The scaled-out shape, as `make cluster` starts it: a short load test with a fault drill,
read-your-writes against a replica that has stopped replaying, and a clean shutdown."""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from bench.mixed_load import run
from cluster import postgres
from cluster.control import Cluster, ClusterError, up
from tests.support.images import png
from tests.support.server import free_port
from tests.support.services import service_missing

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if shutil.which("caddy") is None or shutil.which("redis-server") is None:
        service_missing("caddy and redis-server (make cluster installs them)")
    try:
        postgres.binaries()
    except FileNotFoundError as exc:
        service_missing(str(exc))
    # Not under pytest's own folder: PostgreSQL's user must reach the data directories.
    root = Path(tempfile.mkdtemp(prefix="chitram-cluster-test-"))
    started = up(root, port=free_port(), api=2, workers=2)
    yield started
    if (root / "cluster.json").exists():
        started.down()
    shutil.rmtree(root, ignore_errors=True)


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_load_with_an_api_replica_killed_loses_nothing(cluster: Cluster) -> None:
    args = argparse.Namespace(duration=12.0, max_requests=5_000, concurrency=8, drill=["api"])

    result = asyncio.run(run(args, cluster.url, cluster.api_urls(), cluster.env, cluster))
    phase = result["phases"][0]
    assert [what for _, what in phase["events"]] == ["SIGKILL api-1", "start api-1", "api-1 ready"]
    assert phase["ops"]["upload"]["statuses"].get("201", 0) > 0
    assert phase["ops"]["delete"]["statuses"].get("204", 0) > 0
    assert phase["read_your_writes_violations"] == []
    invariants = result["invariants"]
    assert invariants["not_byte_identical"] == []
    assert invariants["deleted_still_served"] == []
    assert invariants["deleted_objects_left"] == []
    assert invariants["deleted_rows_left"] == []
    assert invariants["thumbnails_not_ready"] == []
    assert invariants["reconcile_clean"], invariants["reconcile"]
    # Caddy stops sending to the dead replica: only requests in flight at the kill fail.
    assert phase["errors"] <= args.concurrency, phase["error_samples"]
    assert result["ok"]
    replica_reads = sum(
        _metric(api, 'chitram_database_reads_total{target="replica"}') for api in cluster.api_urls()
    )
    assert replica_reads > 0


async def test_a_lagging_replica_never_hides_a_clients_own_writes(cluster: Cluster) -> None:
    replica_port = int(cluster.component("postgres-replica").ready["pg"])
    replica = await asyncpg.connect(
        host="127.0.0.1", port=replica_port, user="postgres", database="chitram"
    )
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as client:
        email = "lag@example.com"
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": "lagging-replica"}
        )
        assert registered.status_code == 201, registered.text
        token = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        await asyncio.sleep(cluster_lag_bound(cluster))  # past the fresh-epoch window
        await replica.execute("SELECT pg_wal_replay_pause()")
        try:
            uploaded = await client.post(
                "/api/v1/images/upload",
                files={"file": ("lag.png", png(), "image/png")},
                headers=token,
            )
            assert uploaded.status_code == 201, uploaded.text
            image_id = uploaded.json()["id"]
            on_replica = "SELECT count(*) FROM images WHERE id = $1::uuid"
            assert await replica.fetchval(on_replica, image_id) == 0  # the replica lags

            assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 200
            listing = await client.get("/api/v1/images", headers=token)
            assert [item["id"] for item in listing.json()["items"]] == [image_id]

            deleted = await client.delete(f"/api/v1/images/{image_id}", headers=token)
            assert deleted.status_code == 204
            assert (await client.get(f"/api/v1/images/{image_id}")).status_code == 404
            assert (await client.get(f"/api/v1/images/{image_id}/file")).status_code == 404
            listing = await client.get("/api/v1/images", headers=token)
            assert listing.json()["items"] == []
        finally:
            await replica.execute("SELECT pg_wal_replay_resume()")
            await replica.close()


def cluster_lag_bound(cluster: Cluster) -> float:
    return float(cluster.env.get("REPLICA_MAX_LAG_SECONDS", "10")) + 0.5


def test_down_stops_every_process_it_started(cluster: Cluster) -> None:
    pids = [pid for pid in cluster.running().values() if pid]
    assert len(pids) == len(cluster.components)
    cluster.down()
    assert not Path(cluster.root).exists()
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    with pytest.raises(ClusterError):
        Cluster.load(cluster.root)
