"""Run Debian's `caddy` on a Caddyfile, as the deployment would read it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.services import service_missing


def run_caddy(command: str, caddyfile: Path) -> subprocess.CompletedProcess[str]:
    """`caddy <command> --config <caddyfile>` (`validate`, `adapt`); it must succeed."""
    caddy = shutil.which("caddy")
    if caddy is None:
        service_missing(f"Debian's caddy (apt-get install caddy) for `caddy {command}`")
    result = subprocess.run(
        [str(caddy), command, "--config", str(caddyfile), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CHITRAM_DOMAIN": "images.example.com"},
    )
    assert result.returncode == 0, result.stderr
    return result
