"""HTTP throughput of one `chitram serve` process, driven by wrk over loopback.

    uv run python -m bench.http_load [--duration 10] [--log-level WARNING --log-level INFO]

Scenarios (embedded shape: SQLite and local disk, one server process):
  download  GET /api/v1/images/{id}/file of a ~200 KB JPEG, 50 connections
  metadata  GET /api/v1/images/{id}, 50 connections
  upload    POST /api/v1/images/upload of ~1 MB JPEGs, each with distinct bytes, 16 connections

wrk (Debian package `wrk`) shares the machine's cores with the server: see bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import profile
from bench.common import (
    BENCH_DIR,
    JFIF_DENSITY_OFFSET,
    RESULTS_DIR,
    CpuMeter,
    Multipart,
    Server,
    add_server_env,
    describe_code,
    embedded_server,
    jpeg_near,
    jpeg_variant,
    machine_info,
    multipart_file,
    print_table,
    server_env,
    timestamp,
    write_results,
)

WRK_DIR = BENCH_DIR / "wrk"
# requests/s; "metadata-key" (the same read with an X-API-Key, which costs a key lookup)
# has no target of its own: it is compared with "metadata".
TARGETS = {"download": 3000.0, "metadata": 3000.0, "metadata-key": 0.0, "upload": 100.0}
SCENARIOS = ("download", "metadata", "metadata-key", "upload")
GET_SCENARIOS = ("download", "metadata", "metadata-key")
OTHER_CPU_WARNING = 0.15  # cores used by processes other than the server and wrk
# Variant numbers of the upload bodies: the checks, the warm-up and the measured run
# use disjoint ranges so no two uploads of one server ever carry the same bytes.
CHECK_VARIANTS = (1, 2)
WARMUP_FIRST_VARIANT = 100_000
MEASURED_FIRST_VARIANT = 1_000_000
PROFILED_FIRST_VARIANT = 5_000_000


class WrkMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Wrk:
    path: str
    version: str

    @classmethod
    def find(cls) -> Wrk:
        path = shutil.which("wrk")
        if path is None:
            raise WrkMissing(
                "wrk is not installed. On Debian/Ubuntu: `apt-get update && apt-get install -y wrk`"
            )
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        return cls(path, (out.stdout or out.stderr).splitlines()[0].strip())

    def run(
        self,
        url: str,
        *,
        connections: int,
        threads: int,
        duration: float,
        script: str,
        server_pid: int,
        script_args: list[str] | None = None,
        headers: list[str] | None = None,
        timeout_s: int = 10,
    ) -> dict[str, Any]:
        """Run wrk once; its summary (from report.lua's done()) plus the text it printed."""
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write((WRK_DIR / script).read_text())
            lua.write("\n")
            lua.write((WRK_DIR / "report.lua").read_text())
        try:
            command = [
                self.path,
                f"--threads={threads}",
                f"--connections={connections}",
                f"--duration={max(1, round(duration))}s",
                f"--timeout={timeout_s}s",
                "--latency",
                f"--script={lua.name}",
                *(f"--header={header}" for header in headers or ()),
                url,
            ]
            if script_args:
                command += ["--", *script_args]
            with CpuMeter(server_pid) as cpu:
                out = subprocess.run(
                    command, capture_output=True, text=True, timeout=duration + 60, check=False
                )
        finally:
            Path(lua.name).unlink()
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH_JSON ")]
        if not lines:
            raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
        summary: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH_JSON "))
        summary["cpu"] = cpu.result
        summary["text"] = "\n".join(
            line for line in out.stdout.splitlines() if not line.startswith("BENCH_JSON ")
        )
        return summary


def _result(
    scenario: str, log_level: str, connections: int, threads: int, summary: dict[str, Any]
) -> dict[str, Any]:
    seconds = summary["duration_us"] / 1e6
    rps = summary["requests"] / seconds if seconds else 0.0
    errors = summary["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    # wrk's own count is of statuses >= 400; upload.lua also counts every status but 201.
    bad_status = max(errors["status"], summary["unexpected_status"])
    latency = {k: v / 1000 for k, v in summary["latency_us"].items()}
    target = TARGETS[scenario]
    return {
        "scenario": scenario,
        "log_level": log_level,
        "connections": connections,
        "wrk_threads": threads,
        "duration_s": round(seconds, 3),
        "requests": summary["requests"],
        "requests_per_s": round(rps, 1),
        "mb_per_s": round(summary["bytes"] / seconds / 1e6, 1) if seconds else 0.0,
        "latency_ms": latency,
        "socket_errors": socket_errors,
        "non_2xx": bad_status,
        "status_counted_exactly": summary["unexpected_status"] >= 0,
        "cpu_cores": summary["cpu"],
        "target_requests_per_s": target,
        "meets_target": rps >= target and bad_status == 0 and socket_errors == 0,
        "wrk_output": summary["text"],
    }


def _upload_check(
    server: Server, client: httpx.Client, jpeg: bytes, image_bytes: int
) -> dict[str, Any]:
    """Upload two density variants: their checksums must differ and match what was sent."""
    checksums = []
    for variant in CHECK_VARIANTS:
        data = jpeg_variant(jpeg, variant)
        checksum = _upload_once(server, client, data, "bench.jpg")["checksum"]
        if checksum != "sha256:" + hashlib.sha256(data).hexdigest():
            raise RuntimeError("the server changed the upload's bytes: density variants unsafe")
        checksums.append(checksum)
    if checksums[0] == checksums[1]:
        raise RuntimeError("two density variants got the same checksum")
    return {"upload_bytes": image_bytes, "variant_checksums": checksums, "distinct": True}


def _upload_once(
    server: Server, client: httpx.Client, data: bytes, filename: str
) -> dict[str, Any]:
    """One upload with the multipart body wrk sends; the 201's body."""
    form = multipart_file(data, filename)
    response = client.post(
        f"{server.url}/api/v1/images/upload",
        content=form.body,
        headers={"Content-Type": form.content_type},
    )
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def _prepare(server: Server, client: httpx.Client, jpeg: bytes) -> tuple[str, dict[str, Any]]:
    """Upload the download image, check both GET routes answer as expected."""
    image = _upload_once(server, client, jpeg, "download.jpg")
    file = client.get(f"{server.url}/api/v1/images/{image['id']}/file")
    if file.status_code != 200 or file.content != jpeg:
        raise RuntimeError(f"GET file answered {file.status_code} with other bytes")
    metadata = client.get(f"{server.url}/api/v1/images/{image['id']}")
    if metadata.status_code != 200 or metadata.json()["id"] != image["id"]:
        raise RuntimeError(f"GET metadata answered {metadata.status_code}")
    return image["id"], {
        "download_file_bytes": len(jpeg),
        "download_response_headers": dict(file.headers),
        "metadata_body_bytes": len(metadata.content),
    }


def _profiled(
    args: argparse.Namespace, name: str, pid: int, load: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Repeat a run while py-spy samples the server; its figures are not the quoted ones."""
    RESULTS_DIR.mkdir(exist_ok=True)
    raw = RESULTS_DIR / f"profile-{args.started_at}-{name}.txt"
    sampler = profile.record(pid, max(1.0, args.duration - 1), raw)
    print(f"  profiling {name} with py-spy ...", flush=True)
    summary = load()
    _, stderr = sampler.communicate(timeout=60)
    if sampler.returncode != 0 or not raw.exists():
        return {"error": stderr.decode(errors="replace")[-2000:]}
    found = profile.summarise(raw)
    profile.print_summary(f"py-spy, {name} ({summary['requests']} requests while sampled)", found)
    return {"raw": str(raw), **found}


def _api_key(server: Server, client: httpx.Client) -> str:
    """An API key of a fresh account: the caller of the authenticated scenario."""
    account = {"email": "bench@example.com", "password": "bench password"}
    token = client.post(f"{server.url}/api/v1/auth/register", json=account)
    token.raise_for_status()
    created = client.post(
        f"{server.url}/api/v1/auth/api-keys",
        json={"name": "bench"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    created.raise_for_status()
    return str(created.json()["key"])


def _db_counts(server: Server) -> dict[str, int]:
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        images = db.execute("SELECT count(*) FROM images").fetchone()[0]
        blobs = db.execute("SELECT count(*) FROM blobs").fetchone()[0]
    return {"images": int(images), "blobs": int(blobs)}


def run_level(
    wrk: Wrk, args: argparse.Namespace, log_level: str, jpeg: bytes, upload_jpeg: bytes
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    results: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    with (
        embedded_server(log_level, **args.server_env) as server,
        httpx.Client(timeout=30) as client,
    ):
        print(f"[{log_level}] server pid {server.pid} at {server.url}, data in {server.data_dir}")
        image_id, checks["prepare"] = _prepare(server, client, jpeg)
        urls = {
            "download": f"{server.url}/api/v1/images/{image_id}/file",
            "metadata": f"{server.url}/api/v1/images/{image_id}",
            "metadata-key": f"{server.url}/api/v1/images/{image_id}",
        }
        headers: dict[str, list[str]] = {name: [] for name in GET_SCENARIOS}
        if "metadata-key" in args.scenarios:
            headers["metadata-key"] = [f"X-API-Key: {_api_key(server, client)}"]
        for scenario in GET_SCENARIOS:
            if scenario not in args.scenarios:
                continue
            common = {
                "connections": args.connections,
                "threads": args.threads,
                "server_pid": server.pid,
                "headers": headers[scenario],
            }
            wrk.run(urls[scenario], duration=args.warmup, script="get.lua", **common)
            print(f"[{log_level}] {scenario}: {args.duration:g} s ...", flush=True)
            summary = wrk.run(urls[scenario], duration=args.duration, script="get.lua", **common)
            results.append(_result(scenario, log_level, args.connections, args.threads, summary))
            if args.profile:
                checks[f"profile_{scenario}"] = _profiled(
                    args,
                    f"{scenario}-{log_level}",
                    server.pid,
                    partial(
                        wrk.run, urls[scenario], duration=args.duration, script="get.lua", **common
                    ),
                )
        after = client.get(urls["metadata"])
        checks["metadata_x_cache_after_runs"] = after.headers.get("x-cache")
        if "upload" in args.scenarios:
            results.append(_upload(wrk, args, log_level, server, client, upload_jpeg, checks))
    return results, checks


def _upload(
    wrk: Wrk,
    args: argparse.Namespace,
    log_level: str,
    server: Server,
    client: httpx.Client,
    upload_jpeg: bytes,
    checks: dict[str, Any],
) -> dict[str, Any]:
    checks["upload_distinct"] = _upload_check(server, client, upload_jpeg, len(upload_jpeg))
    form: Multipart = multipart_file(upload_jpeg)
    before = _db_counts(server)
    url = f"{server.url}/api/v1/images/upload"
    with tempfile.NamedTemporaryFile(suffix=".multipart", delete=False) as body:
        body.write(form.body)
    try:
        offset = str(form.file_offset + JFIF_DENSITY_OFFSET)

        def run(duration: float, first: int) -> dict[str, Any]:
            return wrk.run(
                url,
                connections=args.upload_connections,
                threads=args.threads,
                duration=duration,
                server_pid=server.pid,
                script="upload.lua",
                script_args=[body.name, offset, str(first), form.content_type],
            )

        run(args.warmup, WARMUP_FIRST_VARIANT)
        print(f"[{log_level}] upload: {args.duration:g} s ...", flush=True)
        summary = run(args.duration, MEASURED_FIRST_VARIANT)
        if args.profile:
            checks["profile_upload"] = _profiled(
                args,
                f"upload-{log_level}",
                server.pid,
                lambda: run(args.duration, PROFILED_FIRST_VARIANT),
            )
    finally:
        Path(body.name).unlink()
    after = _db_counts(server)
    result = _result("upload", log_level, args.upload_connections, args.threads, summary)
    # Every upload that got its 201 is a row; all rows must point at distinct blobs.
    new_images = after["images"] - before["images"]
    new_blobs = after["blobs"] - before["blobs"]
    checks["upload_dedup"] = {"new_images": new_images, "new_blobs": new_blobs}
    result["all_bytes_distinct"] = new_images == new_blobs
    if new_images != new_blobs:
        result["meets_target"] = False
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load", description=__doc__)
    parser.add_argument("--duration", type=float, default=10, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up (discarded)")
    parser.add_argument("--connections", type=int, default=50, help="for the GET scenarios")
    parser.add_argument("--upload-connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--image-bytes", type=int, default=200_000, help="download image size")
    parser.add_argument("--upload-bytes", type=int, default=1_000_000, help="upload image size")
    parser.add_argument(
        "--log-level",
        action="append",
        dest="log_levels",
        help="server LOG_LEVEL; repeat to compare (default: WARNING)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also repeat each scenario under py-spy (run via `uv run --with py-spy`)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        dest="scenarios",
        choices=SCENARIOS,
        help="run only these (repeatable; default: all)",
    )
    add_server_env(parser, "RATE_LIMIT_ENABLED=true")
    args = parser.parse_args(argv)
    args.server_env = server_env(args.server_env)
    args.log_levels = args.log_levels or ["WARNING"]
    args.scenarios = args.scenarios or list(SCENARIOS)
    return args


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return (and save) its results."""
    args = parse_args(argv)
    wrk = Wrk.find()
    if args.profile:
        profile.py_spy()
    started = args.started_at = timestamp()
    print(f"making test images (~{args.image_bytes} and ~{args.upload_bytes} bytes) ...")
    jpeg = jpeg_near(args.image_bytes, seed=7)
    upload_jpeg = jpeg_near(args.upload_bytes, seed=8)
    results: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for level in args.log_levels:
        level_results, checks[level] = run_level(wrk, args, level, jpeg, upload_jpeg)
        results += level_results
    report = {
        "benchmark": "http_load",
        "started_at": started,
        "machine": {**machine_info(), "wrk": wrk.version},
        "config": {
            "shape": "embedded (SQLite, local disk), one server process",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "upload_connections": args.upload_connections,
            "wrk_threads": args.threads,
            "download_image_bytes": len(jpeg),
            "upload_image_bytes": len(upload_jpeg),
            "log_levels": args.log_levels,
        },
        "checks": checks,
        "results": results,
    }
    path = write_results("http_load", report)
    print_report(report)
    print(f"\nresults: {path}")
    return report


def print_report(report: dict[str, Any]) -> None:
    config = report["config"]
    print(f"\n{describe_code(report['machine']['code'])}")
    print(
        f"\nhttp_load: {config['shape']}; {config['duration_s']:g} s per scenario after "
        f"{config['warmup_s']:g} s warm-up; wrk threads {config['wrk_threads']}; "
        f"download file {config['download_image_bytes']} B, "
        f"upload file {config['upload_image_bytes']} B"
    )
    rows = []
    for r in report["results"]:
        lat = r["latency_ms"]
        rows.append(
            [
                r["scenario"],
                r["log_level"],
                str(r["connections"]),
                f"{r['requests_per_s']:.0f}",
                f"{lat['p50']:.2f}",
                f"{lat['p90']:.2f}",
                f"{lat['p99']:.2f}",
                str(r["non_2xx"]),
                str(r["socket_errors"]),
                f"{r['cpu_cores']['server_cores']:.2f}",
                f"{r['cpu_cores']['load_generator_cores']:.2f}",
                f"{r['cpu_cores']['other_cores']:.2f}",
                f"{r['cpu_cores'].get('steal_cores', 0.0):.2f}",
                f">= {r['target_requests_per_s']:g}",
                "PASS" if r["meets_target"] else "MISS",
            ]
        )
    headers = ["scenario", "log", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms"]
    more = ["non-2xx", "sock err", "srv cpu", "wrk cpu", "other", "steal", "target", ""]
    print_table([*headers, *more], rows)
    busy = [r for r in report["results"] if r["cpu_cores"]["other_cores"] > OTHER_CPU_WARNING]
    if busy:
        names = ", ".join(f"{r['scenario']}/{r['log_level']}" for r in busy)
        print(
            f"WARNING: other processes used more than {OTHER_CPU_WARNING} cores during {names}:"
            " the machine was not quiet, so those figures understate the server."
        )
    stolen = [r for r in report["results"] if r["cpu_cores"].get("steal_cores", 0.0) > 0.1]
    if stolen:
        names = ", ".join(f"{r['scenario']}/{r['log_level']}" for r in stolen)
        print(
            f"WARNING: the hypervisor stole more than 0.1 cores during {names}:"
            " those figures understate the server; rerun when the host is quieter."
        )


def valid(report: dict[str, Any]) -> bool:
    """Whether every run was clean: no bad statuses, no socket errors, no dedup."""
    return all(
        r["non_2xx"] == 0 and r["socket_errors"] == 0 and r.get("all_bytes_distinct", True)
        for r in report["results"]
    )


def main(argv: list[str] | None = None) -> int:
    try:
        report = run(argv)
    except (WrkMissing, profile.PySpyMissing) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0 if valid(report) else 1


if __name__ == "__main__":
    raise SystemExit(main())
