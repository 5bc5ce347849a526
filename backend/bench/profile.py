"""Sample the server with py-spy while a benchmark loads it, and summarise the stacks.

py-spy is not a project dependency: run a benchmark with `--profile` under
`uv run --with py-spy python -m bench.http_load --profile`, which puts it on PATH.

    uv run python -m bench.profile RAW_FILE   # summarise a saved collapsed-stack file
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_LINE_NUMBER = re.compile(r":\d+\)$")
_PREFIXES = re.compile(r"(/[^ ()]*?/site-packages/|/[^ ()]*?/lib/python3\.\d+/|/[^ ()]*?/backend/)")


# Frames every request passes through (server loop, middleware, routing): they would fill
# the inclusive list without saying where the time goes.
_PLUMBING = re.compile(
    r"^(<module>|main|_serve|run|asyncio_run|Runner\.run|Server\.run|"
    r"Thread\._bootstrap\w*|Thread\.run|APIRouter\.\w+|_IncludedRouter\.\w+|"
    r"APIRoute\.handle|request_response\.[\w.<>]+|RequestResponseCycle\.run_asgi) |"
    r"\((starlette/middleware|starlette/_exception_handler|starlette/routing|"
    r"starlette/applications|fastapi/applications|fastapi/middleware|fastapi/telemetry|"
    r"fastapi/_body_limit|app/middleware)"
)


class PySpyMissing(RuntimeError):
    pass


def py_spy() -> str:
    path = shutil.which("py-spy")
    if path is None:
        raise PySpyMissing(
            "py-spy is not on PATH: run under `uv run --with py-spy python -m bench...`"
        )
    return path


def record(pid: int, seconds: float, out: Path, *, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` (only threads holding the GIL); caller waits."""
    command = [
        py_spy(),
        "record",
        f"--pid={pid}",
        f"--duration={max(1, round(seconds))}",
        f"--rate={rate}",
        "--gil",  # one Python process: the GIL holder is what limits throughput
        "--format=raw",
        f"--output={out}",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame(frame: str) -> str:
    return _PREFIXES.sub("", _LINE_NUMBER.sub(")", frame))


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Self (leaf) and inclusive shares of the sampled frames, largest first."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        leaf[frames[-1]] += n
        for frame in set(frames):
            if not _PLUMBING.search(frame):
                inclusive[frame] += n

    def share(counter: Counter[str]) -> list[tuple[float, str]]:
        return [(round(100 * n / total, 1), f) for f, n in counter.most_common(top)]

    return {"samples": total, "self": share(leaf) if total else [], "inclusive": share(inclusive)}


def print_summary(title: str, summary: dict[str, Any]) -> None:
    print(f"\n{title}: {summary['samples']} samples of the GIL holder")
    for kind in ("self", "inclusive"):
        print(f"  {kind}:")
        for percent, frame in summary[kind]:
            print(f"    {percent:5.1f}%  {frame}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("raw", type=Path, help="py-spy --format=raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print_summary(str(args.raw), summarise(args.raw, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
