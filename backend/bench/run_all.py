"""Run every benchmark once and print one summary against the targets (`make bench`).

    uv run python -m bench.run_all [--duration 10]

Exit status: 0 when every run was clean (all statuses as expected, no socket errors),
1 when one was not, 2 when wrk is missing. A missed target is reported, not an error:
these are measurements to quote, not tests.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench import http_load, upload_memory


def summary_lines(load: dict[str, Any] | None, memory: dict[str, Any] | None) -> list[str]:
    lines = []
    if load is not None:
        for r in load["results"]:
            lat = r["latency_ms"]
            other = r["cpu_cores"]["other_cores"]
            lines.append(
                f"{'PASS' if r['meets_target'] else 'MISS'}  {r['scenario']:<8} "
                f"{r['requests_per_s']:>8.0f} req/s (target >= {r['target_requests_per_s']:g})  "
                f"p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms  "
                f"non-2xx {r['non_2xx']}  {r['connections']} conns  LOG_LEVEL={r['log_level']}"
                + (f"  [other load {other} cores]" if other > http_load.OTHER_CPU_WARNING else "")
            )
    if memory is not None:
        for b in memory["bursts"]:
            lines.append(
                f"{'PASS' if b['meets_target'] else 'MISS'}  upload memory burst {b['burst']}: "
                f"+{b['delta_mb']:.1f} MB RSS (target < {memory['target_delta_mb']:g}; "
                f"{b['baseline_mb']:.1f} -> {b['peak_sampled_mb']:.1f} MB, VmHWM "
                f"{b['vm_hwm_mb']:.1f}), {b['statuses'].count(201)}/{b['uploads']} x 201"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk scenario")
    parser.add_argument("--bursts", type=int, default=3, help="upload-memory bursts")
    args = parser.parse_args(argv)

    load: dict[str, Any] | None = None
    status = 0
    print("=== bench.http_load ===", flush=True)
    try:
        load = http_load.run(["--duration", str(args.duration)])
    except http_load.WrkMissing as exc:
        print(exc, file=sys.stderr)
        status = 2
    print("\n=== bench.upload_memory ===", flush=True)
    memory = upload_memory.run(["--bursts", str(args.bursts)])

    print("\n=== summary (machine: 2 cores shared by server and load generator) ===")
    for line in summary_lines(load, memory):
        print(line)
    if status == 0 and (load is None or not http_load.valid(load)):
        status = 1
    if not upload_memory.valid(memory):
        status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
