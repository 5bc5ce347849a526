"""Resident memory of one `chitram serve` process under 16 concurrent ~5 MB uploads.

    uv run python -m bench.upload_memory [--bursts 3] [--concurrency 16]

The server runs in the embedded shape (SQLite, local disk) with the default
MAX_UPLOAD_BYTES (5 MiB). After a few warm-up uploads we read VmRSS from
/proc/<pid>/status as the baseline, fire the burst (every body distinct and built before
the baseline is read), sample VmRSS every 5 ms and read VmHWM (reset before the burst
through /proc/<pid>/clear_refs), and report peak minus baseline. Target: < 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import (
    MB,
    MIB,
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
    reset_peak_rss,
    server_env,
    timestamp,
    tree_status_kb,
    write_results,
)

TARGET_DELTA_MB = 100.0
MAX_UPLOAD_BYTES = 5 * MIB  # the server's default MAX_UPLOAD_BYTES


@dataclass
class RssSampler:
    """Reads VmRSS of `pid` every `interval` seconds in a thread until stopped."""

    pid: int
    interval: float = 0.005
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, kB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            kb = tree_status_kb(self.pid, "VmRSS")
            self.samples.append((time.monotonic() - self._started, kb))
            time.sleep(self.interval)

    @property
    def peak_kb(self) -> int:
        return max(kb for _, kb in self.samples)


def _mb(kb: int) -> float:
    return round(kb * 1024 / MB, 1)


async def _upload(client: httpx.AsyncClient, url: str, form: Multipart) -> tuple[int, str, float]:
    started = time.perf_counter()
    response = await client.post(
        url, content=form.body, headers={"Content-Type": form.content_type}
    )
    checksum = response.json().get("checksum", "") if response.status_code == 201 else ""
    return response.status_code, checksum, time.perf_counter() - started


async def _burst(
    server: Server, forms: list[Multipart], concurrency: int
) -> tuple[list[tuple[int, str, float]], float]:
    url = f"{server.url}/api/v1/images/upload"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        # Open the connections first so that the burst is only the uploads.
        await asyncio.gather(*(client.get(f"{server.url}/health") for _ in range(concurrency)))

        async def one(form: Multipart) -> tuple[int, str, float]:
            async with semaphore:
                return await _upload(client, url, form)

        started = time.perf_counter()
        results = await asyncio.gather(*(one(form) for form in forms))
        return list(results), time.perf_counter() - started


def _forms(jpeg: bytes, first_variant: int, count: int) -> list[Multipart]:
    return [
        multipart_file(jpeg_variant(jpeg, first_variant + i), f"burst-{first_variant + i}.jpg")
        for i in range(count)
    ]


def run_burst(
    server: Server, jpeg: bytes, number: int, args: argparse.Namespace, initial_kb: int
) -> dict[str, Any]:
    forms = _forms(jpeg, 1000 * (number + 1), args.uploads)  # built before the baseline
    time.sleep(args.settle)
    hwm_reset = reset_peak_rss(server.pid)
    baseline = tree_status_kb(server.pid, "VmRSS")
    sampler = RssSampler(server.pid, args.interval)
    sampler.start()
    try:
        results, seconds = asyncio.run(_burst(server, forms, args.concurrency))
    finally:
        sampler.stop()
    hwm = tree_status_kb(server.pid, "VmHWM")
    time.sleep(args.settle)
    after = tree_status_kb(server.pid, "VmRSS")
    statuses = [status for status, _, _ in results]
    checksums = {checksum for _, checksum, _ in results if checksum}
    peak = max(sampler.peak_kb, hwm if hwm_reset else 0)
    delta_mb = (peak - baseline) * 1024 / MB
    return {
        "burst": number,
        "uploads": len(forms),
        "concurrency": args.concurrency,
        "seconds": round(seconds, 3),
        "statuses": statuses,
        "distinct_checksums": len(checksums),
        "upload_seconds": [round(s, 3) for _, _, s in results],
        "baseline_mb": _mb(baseline),
        "peak_sampled_mb": _mb(sampler.peak_kb),
        "vm_hwm_mb": _mb(hwm),
        "vm_hwm_reset": hwm_reset,
        "after_mb": _mb(after),
        "delta_mb": round(delta_mb, 1),
        "delta_from_first_baseline_mb": _mb(peak - initial_kb),
        "samples": len(sampler.samples),
        "rss_timeline_kb": sampler.samples[:: max(1, len(sampler.samples) // 200)],
        "meets_target": delta_mb < TARGET_DELTA_MB
        and all(status == 201 for status in statuses)
        and len(checksums) == len(forms),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_memory", description=__doc__)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=16, help="uploads per burst")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup-uploads", type=int, default=4, help="sequential, before")
    parser.add_argument(
        "--file-bytes", type=int, default=5 * MIB - 64 * 1024, help="JPEG size (<= 5 MiB)"
    )
    parser.add_argument("--interval", type=float, default=0.005, help="RSS sampling period (s)")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds around bursts")
    parser.add_argument("--log-level", default="WARNING", help="server LOG_LEVEL")
    add_server_env(parser, "MALLOC_ARENA_MAX=2")
    args = parser.parse_args(argv)
    args.server_env = server_env(args.server_env)
    return args


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = timestamp()
    print(f"making a ~{args.file_bytes} byte JPEG ...", flush=True)
    jpeg = jpeg_near(args.file_bytes, seed=5, at_most=min(args.file_bytes, MAX_UPLOAD_BYTES))
    bursts: list[dict[str, Any]] = []
    with embedded_server(args.log_level, **args.server_env) as server:
        print(f"server pid {server.pid} at {server.url}; JPEG {len(jpeg)} bytes", flush=True)
        startup_kb = tree_status_kb(server.pid, "VmRSS")
        warmup = asyncio.run(_burst(server, _forms(jpeg, 1, args.warmup_uploads), 1))[0]
        if any(status != 201 for status, _, _ in warmup):
            raise RuntimeError(f"warm-up uploads failed: {[s for s, _, _ in warmup]}")
        time.sleep(args.settle)
        initial_kb = tree_status_kb(server.pid, "VmRSS")
        for number in range(1, args.bursts + 1):
            print(f"burst {number}: {args.uploads} uploads, concurrency {args.concurrency}")
            bursts.append(run_burst(server, jpeg, number, args, initial_kb))
    report = {
        "benchmark": "upload_memory",
        "started_at": started,
        "machine": machine_info(),
        "config": {
            "shape": "embedded (SQLite, local disk), one server process",
            "file_bytes": len(jpeg),
            "max_upload_bytes": MAX_UPLOAD_BYTES,
            "uploads_per_burst": args.uploads,
            "concurrency": args.concurrency,
            "warmup_uploads": args.warmup_uploads,
            "sampling_interval_s": args.interval,
            "log_level": args.log_level,
            "server_env": args.server_env,
        },
        "startup_rss_mb": _mb(startup_kb),
        "after_warmup_rss_mb": _mb(initial_kb),
        "target_delta_mb": TARGET_DELTA_MB,
        "bursts": bursts,
    }
    path = write_results("upload_memory", report)
    print_report(report)
    print(f"\nresults: {path}")
    return report


def print_report(report: dict[str, Any]) -> None:
    config = report["config"]
    print(f"\n{describe_code(report['machine']['code'])}")
    print(
        f"\nupload_memory: {config['uploads_per_burst']} uploads of {config['file_bytes']} B, "
        f"concurrency {config['concurrency']}; RSS at start {report['startup_rss_mb']} MB, "
        f"after {config['warmup_uploads']} warm-up uploads {report['after_warmup_rss_mb']} MB "
        "(MB = 10^6 bytes)"
    )
    rows = []
    for b in report["bursts"]:
        statuses = sorted(set(b["statuses"]))
        rows.append(
            [
                str(b["burst"]),
                f"{b['baseline_mb']:.1f}",
                f"{b['peak_sampled_mb']:.1f}",
                f"{b['vm_hwm_mb']:.1f}",
                f"{b['delta_mb']:.1f}",
                f"{b['after_mb']:.1f}",
                f"{b['seconds']:.2f}",
                f"{b['statuses'].count(201)}/{b['uploads']}x201"
                + ("" if statuses == [201] else f" {statuses}"),
                f"< {report['target_delta_mb']:g}",
                "PASS" if b["meets_target"] else "MISS",
            ]
        )
    headers = ["burst", "baseline", "peak", "VmHWM", "delta", "after", "secs", "statuses"]
    print_table([*headers, "target", ""], rows)


def valid(report: dict[str, Any]) -> bool:
    return all(
        all(s == 201 for s in b["statuses"]) and b["distinct_checksums"] == b["uploads"]
        for b in report["bursts"]
    )


def main(argv: list[str] | None = None) -> int:
    return 0 if valid(run(argv)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
