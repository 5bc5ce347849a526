"""Run `chitram` as a real process on a free loopback port, as a user would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

CHITRAM = str(Path(sys.executable).parent / "chitram")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chitram(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one `chitram` subcommand to completion."""
    return subprocess.run(
        [CHITRAM, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class _Process:
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash (a worker hands nothing back)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class LiveServer(_Process):
    url: str


@contextlib.contextmanager
def live_server(
    env: dict[str, str], log_dir: Path, *, migrate: bool = True, healthy: bool = True
) -> Iterator[LiveServer]:
    """`chitram migrate` then `chitram serve` with `env`; stopped (and reaped) at the end.
    Ready once /health answers 200, or with `healthy=False` once it answers at all (a
    server whose database is down)."""
    full_env = {**os.environ, "LOG_FORMAT": "json", **env}
    if migrate:
        result = chitram("migrate", env=full_env)
        assert result.returncode == 0, result.stderr
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [CHITRAM, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process, log_path, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, f"{server.url}/health", "server", any_status=not healthy)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def _wait_ready(
    process: _Process, url: str, what: str, timeout: float = 30, *, any_status: bool = False
) -> None:
    """Poll `url` until it answers 200 (any status with `any_status`); fail with the log
    if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{process.log()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            status = httpx.get(url, timeout=1).status_code
            if any_status or status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{process.log()[-3000:]}")


@dataclass
class LiveWorker(_Process):
    metrics_url: str


@contextlib.contextmanager
def live_worker(env: dict[str, str], log_dir: Path) -> Iterator[LiveWorker]:
    """`chitram worker` with `env`, its metrics on a free port; stopped at the end."""
    port = free_port()
    log_path = log_dir / f"worker-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [CHITRAM, "worker", "--metrics-port", str(port)],
            env={**os.environ, "LOG_FORMAT": "json", **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = LiveWorker(process, log_path, f"http://127.0.0.1:{port}/metrics")
    try:
        _wait_ready(worker, worker.metrics_url, "worker")
        yield worker
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
