"""Download a 500-image album as a zip from one `chitram serve` process: throughput
against reading the same files from disk, and the server's memory while it streams.

    uv run python -m bench.album_zip [--images 500] [--image-bytes 1000000] [--runs 3]

The server runs in the embedded shape (SQLite, local disk). We upload `--images` distinct
noisy JPEGs (~1 MB each), put them in one album, wait for their thumbnail and tag jobs
to finish (so the download competes with nothing), then:

1. read every stored original from the server's data directory, in album order, in
   256 KiB reads: "disk";
2. `GET /api/v1/albums/{id}/download` `--runs` times with curl (httpx when there is no
   curl: it parses chunked bodies at ~100 MB/s, slower than the server sends them),
   discarding the bytes, with the server's VmRSS sampled every 5 ms and VmHWM reset
   before each run (summed over its process tree): "zip";
3. once more into a file, checked with `zipfile` (every entry, every CRC) and against
   the source files.

Both are measured with the page cache warm and, with `--cold` (root only: it writes
/proc/sys/vm/drop_caches, which empties the whole machine's page cache), cold: that
pair is "disk speed" in the literal sense. Targets (issue 16): the zip streams at disk
speed (zip/disk is reported) and the server's resident memory grows by less than 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    MB,
    CpuMeter,
    Server,
    add_server_env,
    describe_code,
    embedded_server,
    jpeg_near,
    jpeg_variant,
    machine_info,
    multipart_file,
    print_table,
    reset_peak_rss,
    server_env,
    timestamp,
    tree_status_kb,
    write_results,
)
from bench.upload_memory import RssSampler

TARGET_DELTA_MB = 50.0
_CURL_FORMAT = "%{size_download} %{time_total}"
API = "/api/v1"


def _mb(kb: int) -> float:
    return round(kb * 1024 / MB, 1)


async def _register(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": "bench@example.com", "password": "correct horse battery staple"},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _upload_all(
    client: httpx.AsyncClient, auth: dict[str, str], jpeg: bytes, count: int, concurrency: int
) -> list[dict[str, Any]]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(number: int) -> dict[str, Any]:
        form = multipart_file(jpeg_variant(jpeg, number + 1), f"photo-{number % 50}.jpg")
        async with semaphore:
            response = await client.post(
                f"{API}/images/upload",
                content=form.body,
                headers={**auth, "Content-Type": form.content_type},
            )
        if response.status_code != 201:
            raise RuntimeError(f"upload {number}: {response.status_code} {response.text}")
        body: dict[str, Any] = response.json()
        return body

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _wait_for_jobs(client: httpx.AsyncClient, auth: dict[str, str]) -> float:
    """Until no image of the caller has a pending thumbnail or tag job; seconds waited."""
    started = time.perf_counter()
    while True:
        pending, cursor = 0, None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(f"{API}/images", params=params, headers=auth)).json()
            pending += sum(
                item["thumbnail_status"] == "pending" or item.get("tags_status") == "pending"
                for item in page["items"]
            )
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if not pending:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)


async def _prepare(server: Server, args: argparse.Namespace, jpeg: bytes) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
        auth = await _register(client)
        started = time.perf_counter()
        uploaded = await _upload_all(client, auth, jpeg, args.images, args.concurrency)
        upload_s = time.perf_counter() - started
        jobs_s = await _wait_for_jobs(client, auth)
        album = await client.post(f"{API}/albums", json={"title": "Bench album"}, headers=auth)
        album.raise_for_status()
        album_id = album.json()["id"]
        ids = [image["id"] for image in uploaded]
        put = await client.put(
            f"{API}/albums/{album_id}/images", json={"image_ids": ids}, headers=auth
        )
        put.raise_for_status()
        assert put.json()["image_count"] == args.images
    return {
        "auth": auth,
        "album_id": album_id,
        "images": uploaded,
        "upload_seconds": round(upload_s, 2),
        "jobs_seconds": round(jobs_s, 2),
    }


def _object_path(server: Server, checksum: str) -> Path:
    sha = checksum.removeprefix("sha256:")
    return server.data_dir / "objects" / "originals" / sha[:2] / sha[2:4] / sha


def _read_from_disk(paths: list[Path], chunk: int = 256 * 1024) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    for path in paths:
        with path.open("rb") as file:
            while data := file.read(chunk):
                total += len(data)
    return total, time.perf_counter() - started


async def _download(url: str, auth: dict[str, str], sink: Path | None = None) -> tuple[int, float]:
    """Bytes of the zip and seconds from the request to the last byte."""
    total = 0
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        async with client.stream("GET", url, headers=auth) as response:
            response.raise_for_status()
            if response.headers["content-type"] != "application/zip":
                raise RuntimeError(f"unexpected content type {response.headers['content-type']}")
            file = sink.open("wb") if sink else None
            try:
                async for data in response.aiter_raw(1024 * 1024):
                    total += len(data)
                    if file:
                        file.write(data)
            finally:
                if file:
                    file.close()
        return total, time.perf_counter() - started


def _curl(url: str, auth: dict[str, str]) -> tuple[int, float]:
    """Bytes of the zip and seconds from the request to the last byte, with curl."""
    [(name, value)] = auth.items()
    out = subprocess.run(
        ["curl", "-sSf", "-o", "/dev/null", "-w", _CURL_FORMAT, "-H", f"{name}: {value}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    size, seconds = out.stdout.split()
    return int(size), float(seconds)


def _drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _measured_download(
    server: Server, url: str, auth: dict[str, str], settle: float, cold: bool
) -> dict[str, Any]:
    time.sleep(settle)
    if cold:
        _drop_caches()
    hwm_reset = reset_peak_rss(server.pid)
    baseline = tree_status_kb(server.pid, "VmRSS")
    sampler = RssSampler(server.pid)
    sampler.start()
    try:
        with CpuMeter(server.pid) as cpu:
            if shutil.which("curl"):
                size, seconds = _curl(url, auth)
            else:
                size, seconds = asyncio.run(_download(url, auth))
    finally:
        sampler.stop()
    hwm = tree_status_kb(server.pid, "VmHWM")
    peak = max(sampler.peak_kb, hwm if hwm_reset else 0)
    return {
        "cache": "cold" if cold else "warm",
        "zip_bytes": size,
        "seconds": round(seconds, 3),
        "mb_per_s": round(size / MB / seconds, 1),
        "baseline_rss_mb": _mb(baseline),
        "peak_sampled_mb": _mb(sampler.peak_kb),
        "vm_hwm_mb": _mb(hwm),
        "vm_hwm_reset": hwm_reset,
        "rss_delta_mb": round((peak - baseline) * 1024 / MB, 1),
        "after_rss_mb": _mb(tree_status_kb(server.pid, "VmRSS")),
        "cpu": cpu.result,
    }


def _verify(url: str, auth: dict[str, str], images: list[dict[str, Any]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chitram-album-zip-") as tmp:
        path = Path(tmp) / "album.zip"
        asyncio.run(_download(url, auth, path))
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            bad = archive.testzip()  # reads every entry and checks its CRC
            identical = 0
            for info, image in zip(infos, images, strict=True):
                digest = hashlib.sha256(archive.read(info)).hexdigest()
                identical += f"sha256:{digest}" == image["checksum"]
        return {
            "entries": len(infos),
            "distinct_names": len({info.filename for info in infos}),
            "all_stored": all(info.compress_type == zipfile.ZIP_STORED for info in infos),
            "crc_errors": bad,
            "identical_to_originals": identical,
        }


def _disk(paths: list[Path], cache: str) -> dict[str, Any]:
    if cache == "cold":
        _drop_caches()
    else:
        _read_from_disk(paths)  # fills the page cache
    size, seconds = _read_from_disk(paths)
    return {"bytes": size, "seconds": round(seconds, 3), "mb_per_s": round(size / MB / seconds, 1)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.album_zip", description=__doc__)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--image-bytes", type=int, default=1_000_000, help="JPEG size")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent uploads")
    parser.add_argument("--runs", type=int, default=3, help="measured downloads per cache state")
    parser.add_argument(
        "--cold", action="store_true", help="also measure with the page cache dropped (root)"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before each")
    parser.add_argument("--log-level", default="WARNING", help="server LOG_LEVEL")
    add_server_env(parser, "MALLOC_ARENA_MAX=2")
    args = parser.parse_args(argv)
    args.server_env = server_env(args.server_env)
    return args


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = timestamp()
    caches = ("warm", "cold") if args.cold else ("warm",)
    print(f"making a ~{args.image_bytes} byte JPEG ...", flush=True)
    jpeg = jpeg_near(args.image_bytes, seed=7)
    with embedded_server(args.log_level, **args.server_env) as server:
        print(f"server pid {server.pid} at {server.url}", flush=True)
        print(f"uploading {args.images} images ...", flush=True)
        prepared = asyncio.run(_prepare(server, args, jpeg))
        images = prepared["images"]
        url = f"{server.url}{API}/albums/{prepared['album_id']}/download"
        paths = [_object_path(server, image["checksum"]) for image in images]
        disk = {cache: _disk(paths, cache) for cache in caches}
        runs = []
        for cache in caches:
            print(f"disk ({cache}): {disk[cache]['mb_per_s']} MB/s", flush=True)
            for number in range(1, args.runs + 1):
                result = _measured_download(
                    server, url, prepared["auth"], args.settle, cache == "cold"
                )
                result["x_disk"] = round(result["mb_per_s"] / disk[cache]["mb_per_s"], 3)
                runs.append(result)
                print(
                    f"zip run {number} ({cache}): {result['mb_per_s']} MB/s, "
                    f"RSS +{result['rss_delta_mb']} MB",
                    flush=True,
                )
        verification = _verify(url, prepared["auth"], images)
    worst_delta = max(run["rss_delta_mb"] for run in runs)
    report = {
        "benchmark": "album_zip",
        "started_at": started,
        "machine": machine_info(),
        "config": {
            "shape": "embedded (SQLite, local disk), one server process",
            "images": args.images,
            "image_bytes": len(jpeg),
            "upload_concurrency": args.concurrency,
            "runs": args.runs,
            "client": "curl" if shutil.which("curl") else "httpx",
            "log_level": args.log_level,
            "server_env": args.server_env,
        },
        "upload_seconds": prepared["upload_seconds"],
        "jobs_seconds": prepared["jobs_seconds"],
        "disk": disk,
        "runs": runs,
        "best_zip_vs_disk": {
            cache: max(run["x_disk"] for run in runs if run["cache"] == cache) for cache in disk
        },
        "worst_rss_delta_mb": worst_delta,
        "target_delta_mb": TARGET_DELTA_MB,
        "verification": verification,
        "meets_memory_target": worst_delta < TARGET_DELTA_MB,
        "valid": verification["entries"] == args.images
        and verification["distinct_names"] == args.images
        and verification["crc_errors"] is None
        and verification["identical_to_originals"] == args.images,
    }
    path = write_results("album_zip", report)
    print_report(report)
    print(f"\nresults: {path}")
    return report


def print_report(report: dict[str, Any]) -> None:
    config = report["config"]
    print(f"\n{describe_code(report['machine']['code'])}")
    disk = ", ".join(f"{cache} {d['mb_per_s']} MB/s" for cache, d in report["disk"].items())
    print(
        f"\nalbum_zip: {config['images']} images of {config['image_bytes']} B, client "
        f"{config['client']}; reading the files: {disk} (MB = 10^6 bytes)"
    )
    rows = [
        [
            str(number),
            run["cache"],
            f"{run['zip_bytes'] / MB:.0f}",
            f"{run['seconds']:.2f}",
            f"{run['mb_per_s']:.1f}",
            f"{run['x_disk']:.2f}",
            f"{run['baseline_rss_mb']:.1f}",
            f"{run['vm_hwm_mb']:.1f}",
            f"{run['rss_delta_mb']:.1f}",
            f"{run['cpu']['server_cores']:.2f}",
            f"{run['cpu']['other_cores'] + run['cpu']['steal_cores']:.2f}",
        ]
        for number, run in enumerate(report["runs"], start=1)
    ]
    headers = ["run", "cache", "MB", "secs", "MB/s", "x disk", "RSS base", "VmHWM", "delta"]
    headers += ["server cores", "others+steal"]
    print_table(headers, rows)
    verdict = "PASS" if report["meets_memory_target"] else "MISS"
    print(f"worst RSS growth {report['worst_rss_delta_mb']} MB (< 50 MB: {verdict})")
    print(f"verification: {report['verification']}")


def main(argv: list[str] | None = None) -> int:
    report = run(argv)
    return 0 if report["valid"] and report["meets_memory_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
