"""`python -m cluster up|down|status|kill NAME|start NAME` (`make cluster` runs `up`)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cluster.control import Cluster, ClusterError, up


def default_root() -> Path:
    return Path(os.environ.get("CLUSTER_DIR") or Path(tempfile.gettempdir()) / "chitram-cluster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__)
    parser.add_argument("--dir", type=Path, default=default_root(), help="the cluster's folder")
    commands = parser.add_subparsers(dest="command", required=True)
    start_all = commands.add_parser("up", help="start everything; prints the URL")
    start_all.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", 8080)))
    start_all.add_argument("--api", type=int, default=2, help="chitram serve processes")
    start_all.add_argument("--workers", type=int, default=2, help="chitram worker processes")
    commands.add_parser("down", help="stop everything it started, by PID, and remove the folder")
    commands.add_parser("status", help="each component's PID, or 'stopped'")
    for verb in ("kill", "start", "stop"):
        one = commands.add_parser(verb, help=f"{verb} one component (for fault drills)")
        one.add_argument("name")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if args.command == "up":
        cluster = up(root, port=args.port, api=args.api, workers=args.workers)
        _print_status(cluster)
        print(f"\nChitram is up at {cluster.url}  (folder {root}; `make cluster-down` stops it)")
        return 0
    if args.command == "down":
        if not (root / "cluster.json").exists():
            print(f"no cluster in {root}")
            return 0
        Cluster.load(root).down()
        print(f"stopped; removed {root}")
        return 0
    cluster = Cluster.load(root)
    if args.command == "status":
        _print_status(cluster)
        return 0
    getattr(cluster, args.command)(args.name)
    _print_status(cluster)
    return 0


def _print_status(cluster: Cluster) -> None:
    for name, pid in cluster.running().items():
        print(f"  {name:<18} {'pid ' + str(pid) if pid else 'stopped'}")


if __name__ == "__main__":
    raise SystemExit(main())
