"""Shared pieces of the benchmarks: the embedded-shape server, test images, results.

Nothing here is a test: the benchmarks are run by hand (`make bench`) and their figures
quoted. They live outside `tests/` so pytest never collects them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tests.support.server
from tests.support.images import noisy_jpeg
from tests.support.server import LiveServer, live_server

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MB = 1_000_000  # figures are reported in decimal megabytes
MIB = 1024 * 1024

# Settings that would move the server away from the embedded shape if inherited.
_NOT_EMBEDDED = ("DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND", "S3_ENDPOINT_URL", "DATA_DIR")


@dataclass(frozen=True)
class Server:
    """A running `chitram serve` and where its data lives."""

    live: LiveServer
    data_dir: Path

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def pid(self) -> int:
        return self.live.process.pid

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chitram.db"


def _find_chitram() -> None:
    """`uv run --with py-spy` runs an overlay interpreter with no `chitram` beside it."""
    if Path(tests.support.server.CHITRAM).exists():
        return
    found = shutil.which("chitram")
    if found is None:
        raise RuntimeError("cannot find the `chitram` command: run from backend/ with `uv run`")
    tests.support.server.CHITRAM = found


@contextlib.contextmanager
def embedded_server(log_level: str = "WARNING", **extra_env: str) -> Iterator[Server]:
    """One `chitram serve` process (workers=1): SQLite and local disk in a fresh temp dir.

    `chitram serve` calls `uvicorn.run(..., workers=1)`, which runs the server in the
    process itself, so the Popen pid is the process that serves requests.
    """
    _find_chitram()
    for name in _NOT_EMBEDDED:
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="chitram-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {
            "DATA_DIR": str(data_dir),
            "STORAGE_BACKEND": "local",
            "ENVIRONMENT": "development",
            "LOG_LEVEL": log_level,
            # One load generator is one client: per-client limits would refuse it.
            "RATE_LIMIT_ENABLED": "false",
            "MAX_UPLOADS_PER_CLIENT": "1000",
            **extra_env,
        }
        with live_server(env, Path(tmp)) as live:
            _check_server(live.process.pid)
            yield Server(live, data_dir)


def _check_server(pid: int) -> None:
    """The pid is `chitram serve` itself (its only children are the CPU pool's workers)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if not any(part.endswith(b"chitram") for part in cmdline) or b"serve" not in cmdline:
        raise RuntimeError(f"pid {pid} is not `chitram serve`: {cmdline!r}")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (the server and its CPU-pool workers)."""
    parents = {
        int(stat.parent.name): _parent_pid(stat) for stat in Path("/proc").glob("[0-9]*/stat")
    }
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def tree_status_kb(pid: int, field: str) -> int:
    """A /proc status field summed over the server's process tree (0 for vanished ones).

    Summing VmHWM over processes gives an upper bound of the tree's peak."""
    total = 0
    for member in process_tree(pid):
        try:
            total += proc_status_kb(member, field)
        except (OSError, ValueError, KeyError):
            continue
    return total


def _parent_pid(stat: Path) -> int | None:
    try:
        text = stat.read_text()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[1])  # the field after the state


# --------------------------------------------------------------------------- images

JFIF_DENSITY_OFFSET = 14  # SOI(2) APP0 marker(2) length(2) "JFIF\0"(5) version(2) units(1)


def jpeg_near(target_bytes: int, *, seed: int = 1, at_most: int | None = None) -> bytes:
    """A noisy (incompressible) JPEG whose size is close to `target_bytes`.

    Noise compresses at a steady rate per pixel, so a couple of rescalings land within
    a percent or so. With `at_most`, the result is guaranteed not to exceed it.
    """
    sample = noisy_jpeg(256, 256, seed)
    bytes_per_pixel = len(sample) / (256 * 256)
    pixels = target_bytes / bytes_per_pixel
    best: bytes | None = None
    for _ in range(6):
        width = max(16, round(math.sqrt(pixels * 4 / 3)))
        height = max(16, round(width * 3 / 4))
        data = noisy_jpeg(width, height, seed)
        fits = at_most is None or len(data) <= at_most
        if fits and (best is None or abs(len(data) - target_bytes) < abs(len(best) - target_bytes)):
            best = data
        if fits and abs(len(data) - target_bytes) <= target_bytes * 0.01:
            break
        pixels *= target_bytes / len(data)
        if at_most is not None and not fits:
            pixels *= 0.99
    if best is None:
        raise RuntimeError(f"could not make a JPEG of at most {at_most} bytes")
    return best


def check_jfif(jpeg: bytes) -> None:
    """The density fields we vary must exist: Pillow writes a JFIF APP0 right after SOI."""
    if jpeg[2:4] != b"\xff\xe0" or jpeg[6:11] != b"JFIF\x00":
        raise ValueError("the JPEG does not start with a JFIF APP0 segment")


def density_bytes(variant: int) -> bytes:
    """X and Y density (big-endian, never 0) for `variant`; bench/wrk/upload.lua mirrors it."""
    x = 1 + variant % 65535
    y = 1 + (variant // 65535) % 65535
    return x.to_bytes(2, "big") + y.to_bytes(2, "big")


def jpeg_variant(jpeg: bytes, variant: int) -> bytes:
    """`jpeg` with its JFIF density set from `variant`: distinct bytes, same pixels.

    Metadata stripping keeps the JFIF APP0 segment, so the stored bytes (and checksum)
    differ per variant and the server's content deduplication never kicks in.
    """
    check_jfif(jpeg)
    o = JFIF_DENSITY_OFFSET
    return jpeg[:o] + density_bytes(variant) + jpeg[o + 4 :]


@dataclass(frozen=True)
class Multipart:
    """A ready-to-send `multipart/form-data` body with one file part named `file`."""

    body: bytes
    content_type: str
    file_offset: int  # where the file's bytes start in `body`


def multipart_file(data: bytes, filename: str = "bench.jpg", mime: str = "image/jpeg") -> Multipart:
    boundary = "bench" + secrets.token_hex(12)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {mime}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return Multipart(head + data + tail, f"multipart/form-data; boundary={boundary}", len(head))


# --------------------------------------------------------------------------- memory


def proc_status_kb(pid: int, field: str) -> int:
    """A `VmRSS:`-style field of /proc/<pid>/status, in kB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS in the whole process tree; False when refused."""
    results = [_reset_one(member) for member in process_tree(pid)]  # reset every one
    return all(results)


def _reset_one(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- CPU

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_cpu_s() -> tuple[float, float, float]:
    """Busy, total and stolen CPU seconds of the whole machine since boot (all cores).

    Steal is time the hypervisor gave our virtual cores to someone else: on a shared
    host it can take a third of the machine, and every figure measured then is low."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy / _TICK, (busy + idle + iowait) / _TICK, steal / _TICK


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds used so far by `pid` and its live descendants (the
    CPU pool's workers count as the server)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


class CpuMeter:
    """Where the machine's CPU went during a run: the server, our children, everyone else.

    Our children are counted as they are reaped (the load generator, run to completion
    inside the window); "other" is whatever the machine did besides the server, those
    children and this process: other people's work skews the figures when it is large.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._start: tuple[float, ...] = ()

    @staticmethod
    def _own() -> tuple[float, float]:
        me, kids = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime

    def __enter__(self) -> CpuMeter:
        busy, total, steal = _machine_cpu_s()
        self._start = (
            time.monotonic(),
            process_cpu_s(self.server_pid),
            busy,
            total,
            steal,
            *self._own(),
        )
        self.result: dict[str, float] = {}
        return self

    def __exit__(self, *_exc: object) -> None:
        busy, total, steal = _machine_cpu_s()
        now = (
            time.monotonic(),
            process_cpu_s(self.server_pid),
            busy,
            total,
            steal,
            *self._own(),
        )
        wall, server, busy_s, total_s, steal_s, me, kids = (
            b - a for a, b in zip(self._start, now, strict=True)
        )
        other = max(0.0, busy_s - steal_s - server - me - kids)
        self.result = {
            "wall_s": round(wall, 3),
            "cores": round(total_s / wall, 2) if wall else 0.0,
            "server_cores": round(server / wall, 2) if wall else 0.0,
            "load_generator_cores": round((me + kids) / wall, 2) if wall else 0.0,
            "other_cores": round(other / wall, 2) if wall else 0.0,
            "steal_cores": round(steal_s / wall, 2) if wall else 0.0,
            "idle_cores": round((total_s - busy_s) / wall, 2) if wall else 0.0,
        }


# --------------------------------------------------------------------------- results


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "platform": platform.platform(),
        "code": code_state(),
    }


def code_state() -> dict[str, Any]:
    """Which server code was measured: the commit plus a digest of uncommitted app changes."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=BENCH_DIR.parent, capture_output=True, text=True, check=False
        )
        return out.stdout if out.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "app").splitlines()]
    digest = hashlib.sha256(git("diff", "HEAD", "--", "app").encode())
    for line in git("ls-files", "--others", "--exclude-standard", "--", "app").splitlines():
        with contextlib.suppress(OSError):
            digest.update(line.encode() + (BENCH_DIR.parent / line).read_bytes())
    return {
        "commit": git("rev-parse", "HEAD").strip() or None,
        "app_changes": changed,
        "app_changes_digest": digest.hexdigest()[:16] if changed else None,
    }


def describe_code(code: dict[str, Any]) -> str:
    commit = (code.get("commit") or "unknown")[:10]
    changes = code.get("app_changes") or []
    if not changes:
        return f"code {commit}"
    digest = code["app_changes_digest"]
    return f"code {commit} + {len(changes)} uncommitted app files (digest {digest})"


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}-{results['started_at']}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)))


def add_server_env(parser: argparse.ArgumentParser, example: str) -> None:
    """`--server-env NAME=VALUE`, repeatable: settings for the server under test."""
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"extra server environment, e.g. {example} (repeatable)",
    )


def server_env(items: list[str]) -> dict[str, str]:
    """The `--server-env` items as an environment."""
    return dict(item.split("=", 1) for item in items)
