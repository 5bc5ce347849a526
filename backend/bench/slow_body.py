"""Slow-body drill: uploads keep being served while many bodies trickle in a byte at a time.

    uv run python -m bench.slow_body [--tricklers 16] [--greedy 10] [--interval 5]

One `chitram serve` in the embedded shape, on loopback, with the shipped upload settings
(MAX_INGEST_BYTES 512 MiB, MAX_UPLOADS_PER_CLIENT 8, UPLOAD_GRACE_SECONDS 10,
UPLOAD_MIN_BYTES_PER_SECOND 8192). Before ADR 0016 each body without a Content-Length
reserved the largest it could be (~106 MB for a batch, ~5.3 MB for one file), so five
batch tricklers and a single-file one left under 1 MB of budget, and every upload over
that got 503 for as long as they kept trickling.

1. Baseline: sequential ~1 MB JPEG uploads for `--baseline` seconds; their latency.
2. Drill: `--tricklers` raw connections, each a different client address (sent as
   `X-Forwarded-For`, believed from loopback), POST a chunked body with no length (half
   of them batches, then half single uploads), then one byte every `--interval` seconds;
   `--greedy` more (batches) do the same from ONE address. Meanwhile the same
   sequential uploads run until every trickler has its answer (bounded by `--give-up`
   seconds).

Expected: every upload 201 in both phases, with similar latency; every distinct-address
trickler 408 `REQUEST_TIMEOUT` soon after the grace period; of the greedy ones,
MAX_UPLOADS_PER_CLIENT get 408 and the rest 429 at once. Bounded in time and count;
loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from typing import Any

import httpx

from bench.common import (
    add_server_env,
    describe_code,
    embedded_server,
    jpeg_near,
    jpeg_variant,
    machine_info,
    print_table,
    server_env,
    timestamp,
    write_results,
)
from tests.support.slow_body import TrickleResult, trickle_upload

GREEDY_ADDRESS = "198.51.100.7"
TRANSPORT_ERROR = 0  # the status recorded when the connection broke instead


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_body", description=__doc__)
    parser.add_argument("--tricklers", type=int, default=16, help="one per client address")
    parser.add_argument("--greedy", type=int, default=10, help="tricklers from one address")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between bytes")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of baseline")
    parser.add_argument("--give-up", type=float, default=60.0, help="max seconds of drill")
    parser.add_argument("--file-bytes", type=int, default=1_000_000, help="JPEG size")
    parser.add_argument("--log-level", default="WARNING", help="server LOG_LEVEL")
    add_server_env(parser, "UPLOAD_GRACE_SECONDS=5")
    args = parser.parse_args(argv)
    args.server_env = server_env(args.server_env)
    return args


class Uploader:
    """Sequential uploads of distinct JPEGs, each timed, until told to stop."""

    def __init__(self, client: httpx.AsyncClient, jpeg: bytes) -> None:
        self.client = client
        self.jpeg = jpeg
        self.sent = 0

    async def run_until(self, stop: asyncio.Event) -> list[tuple[int, float]]:
        results: list[tuple[int, float]] = []
        while not stop.is_set():
            self.sent += 1
            data = jpeg_variant(self.jpeg, self.sent)
            started = time.perf_counter()
            try:
                response = await self.client.post(
                    "/api/v1/images/upload", files={"file": (f"{self.sent}.jpg", data)}
                )
                status = response.status_code
            except httpx.TransportError:
                # A refusal before the body is read closes the connection under it.
                status = TRANSPORT_ERROR
            results.append((status, time.perf_counter() - started))
        return results


async def _timer(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()


async def _drill(url: str, args: argparse.Namespace, jpeg: bytes) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        uploader = Uploader(client, jpeg)
        stop = asyncio.Event()
        timer = asyncio.create_task(_timer(args.baseline, stop))
        baseline = await uploader.run_until(stop)
        await timer

        connected: list[asyncio.Event] = []

        def trickler(address: str, batch: bool = True) -> asyncio.Task[TrickleResult]:
            connected.append(asyncio.Event())
            return asyncio.create_task(
                trickle_upload(
                    url,
                    forwarded_for=address,
                    path="/api/v1/images/batch" if batch else "/api/v1/images/upload",
                    field="files" if batch else "file",
                    interval=args.interval,
                    give_up_after=args.give_up,
                    connected=connected[-1],
                )
            )

        async def all_connected() -> None:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 30)
            await asyncio.sleep(0.2)  # the server takes them in, in this order

        started = time.perf_counter()
        # Batches first, then single files: the order that used to fill the budget.
        half = (args.tricklers + 1) // 2
        distinct = [trickler(f"203.0.113.{n + 1}") for n in range(half)]
        await all_connected()
        distinct += [
            trickler(f"203.0.113.{n + 1}", batch=False) for n in range(half, args.tricklers)
        ]
        await all_connected()
        greedy = [trickler(GREEDY_ADDRESS) for _ in range(args.greedy)]
        await all_connected()
        stop = asyncio.Event()
        every = asyncio.gather(*distinct, *greedy)
        every.add_done_callback(lambda _: stop.set())
        during = await uploader.run_until(stop)
        await every
        drill_seconds = time.perf_counter() - started
    return {
        "baseline": _uploads(baseline),
        "during": _uploads(during),
        "drill_seconds": round(drill_seconds, 2),
        "tricklers": _tricklers([task.result() for task in distinct]),
        "greedy": _tricklers([task.result() for task in greedy]),
    }


def _uploads(results: list[tuple[int, float]]) -> dict[str, Any]:
    latencies = sorted(seconds for _, seconds in results)
    return {
        "count": len(results),
        "statuses": dict(Counter(str(status) for status, _ in results)),
        "p50_ms": _ms(statistics.median(latencies)) if latencies else None,
        "p95_ms": _ms(latencies[int(0.95 * (len(latencies) - 1))]) if latencies else None,
        "max_ms": _ms(latencies[-1]) if latencies else None,
    }


def _tricklers(results: list[TrickleResult]) -> dict[str, Any]:
    by_status: dict[str, list[TrickleResult]] = {}
    for result in results:
        by_status.setdefault(str(result.status), []).append(result)
    return {
        status: {
            "count": len(group),
            "codes": dict(Counter(str((r.error or {}).get("code")) for r in group)),
            "seconds_min": round(min(r.seconds for r in group), 2),
            "seconds_max": round(max(r.seconds for r in group), 2),
            "bytes_sent_max": max(r.bytes_sent for r in group),
            "connection_close": all(r.closes for r in group),
        }
        for status, group in sorted(by_status.items())
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = timestamp()
    jpeg = jpeg_near(args.file_bytes, seed=7)
    # The shipped per-client cap (the bench default raises it for single-client loads).
    env = {"MAX_UPLOADS_PER_CLIENT": "8", **args.server_env}
    with embedded_server(args.log_level, **env) as server:
        print(f"server pid {server.pid} at {server.url}; JPEG {len(jpeg)} bytes", flush=True)
        print(
            f"baseline {args.baseline:g} s, then {args.tricklers} tricklers + {args.greedy} "
            f"from one address, a byte every {args.interval:g} s ...",
            flush=True,
        )
        drill = asyncio.run(_drill(server.url, args, jpeg))
    report = {
        "benchmark": "slow_body",
        "started_at": started,
        "machine": machine_info(),
        "config": {
            "shape": "embedded (SQLite, local disk), one server process, loopback",
            "file_bytes": len(jpeg),
            "tricklers": args.tricklers,
            "greedy_from_one_address": args.greedy,
            "interval_s": args.interval,
            "baseline_s": args.baseline,
            "server_env": env,
        },
        **drill,
    }
    report["ok"] = valid(report)
    path = write_results("slow_body", report)
    print_report(report)
    print(f"\nresults: {path}")
    return report


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{describe_code(report['machine']['code'])}\n")
    rows = []
    for phase in ("baseline", "during"):
        u = report[phase]
        statuses = " ".join(f"{n}x{s}" for s, n in sorted(u["statuses"].items()))
        rows.append(
            [f"uploads, {phase}", str(u["count"]), statuses]
            + [f"{u[k]}" for k in ("p50_ms", "p95_ms", "max_ms")]
        )
    print_table(["what", "count", "statuses", "p50 ms", "p95 ms", "max ms"], rows)
    print("(status 0: the connection was closed before an answer could be read)\n")
    rows = []
    for who in ("tricklers", "greedy"):
        for status, group in report[who].items():
            codes = " ".join(f"{n}x{c}" for c, n in group["codes"].items())
            rows.append(
                [
                    who,
                    status,
                    str(group["count"]),
                    codes,
                    f"{group['seconds_min']}-{group['seconds_max']}",
                    str(group["bytes_sent_max"]),
                    "yes" if group["connection_close"] else "no",
                ]
            )
    print_table(["who", "status", "count", "codes", "answered after s", "bytes", "close"], rows)
    print(f"\ndrill {report['drill_seconds']} s: {'PASS' if report['ok'] else 'FAIL'}")


def valid(report: dict[str, Any]) -> bool:
    config = report["config"]
    per_client = int(config["server_env"]["MAX_UPLOADS_PER_CLIENT"])
    greedy = config["greedy_from_one_address"]
    uploads_ok = all(set(report[phase]["statuses"]) == {"201"} for phase in ("baseline", "during"))
    tricklers = report["tricklers"]
    tricklers_ok = set(tricklers) == {"408"} and tricklers["408"]["count"] == config["tricklers"]
    expected_greedy = {"408": min(per_client, greedy)}
    if greedy > per_client:
        expected_greedy["429"] = greedy - per_client
    greedy_ok = {s: g["count"] for s, g in report["greedy"].items()} == expected_greedy
    return uploads_ok and report["during"]["count"] > 0 and tricklers_ok and greedy_ok


def main(argv: list[str] | None = None) -> int:
    return 0 if run(argv)["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
