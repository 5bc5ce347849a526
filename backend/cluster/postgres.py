"""A PostgreSQL primary and its streaming replica from Debian's server binaries.

`initdb` and `pg_basebackup` make the data directories; the servers are started by
`cluster.control` as plain `postgres` processes. PostgreSQL refuses to run as root, so
as root everything runs as the `postgres` user that Debian's package creates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")


def binaries() -> Path:
    """The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), else PATH's."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found is None:
        raise FileNotFoundError(
            "PostgreSQL's server binaries are missing (apt-get install postgresql)"
        )
    return Path(found).parent


def run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def url(port: int, database: str = "chitram") -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"


def server_options(port: int, data: Path) -> list[str]:
    """Loopback only, its socket in its own directory, WAL ready for a streaming replica."""
    return [
        "-c", f"port={port}",
        "-c", "listen_addresses=127.0.0.1",
        "-c", f"unix_socket_directories={data}",
        "-c", "wal_level=replica",
        "-c", "max_wal_senders=5",
        "-c", "hot_standby=on",
        "-c", "hot_standby_feedback=on",
        "-c", "max_connections=200",
    ]  # fmt: skip


def initdb(data: Path, *, log: Path) -> None:
    """A new primary: trust on loopback only (initdb's pg_hba allows replication there)."""
    _prepare(data)
    _run([str(binaries() / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
          "-E", "UTF8", "--locale=C.UTF-8"], log)  # fmt: skip


def base_backup(primary_port: int, data: Path, *, log: Path) -> None:
    """A replica's data directory, streaming from the primary (`-R` writes its conninfo)."""
    _prepare(data)
    _run([str(binaries() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port),
          "-U", "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast"], log)  # fmt: skip


def create_database(port: int, name: str) -> None:
    subprocess.run(
        [str(binaries() / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name],
        check=True,
        capture_output=True,
    )


def ping(port: int) -> None:
    """Raises until the server accepts connections (a replica once it is consistent)."""
    subprocess.run(
        [str(binaries() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"],
        check=True,
    )


def _prepare(data: Path) -> None:
    data.mkdir(mode=0o700, parents=True)
    user = run_as()
    if user is not None:
        shutil.chown(data, user, user)


def _run(argv: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        done = subprocess.run(
            argv, check=False, stdout=out, stderr=subprocess.STDOUT, user=run_as()
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        hint = " (can the postgres user reach every parent folder?)" if run_as() else ""
        raise RuntimeError(f"{Path(argv[0]).name} failed{hint}; {log} ends:\n{tail}")
