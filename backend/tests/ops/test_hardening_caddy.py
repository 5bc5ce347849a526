"""Caddy in front of the API bounds slow clients, so a trickling client cannot hold a
connection for ever whatever the API does: both the compose Caddyfile and the one
`make cluster` writes give every server read timeouts, as caddy itself reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.control import _caddyfile
from tests.support.caddy import run_caddy

ROOT = Path(__file__).resolve().parents[3]
SECOND = 1_000_000_000  # caddy's JSON durations are in nanoseconds


def _adapt(caddyfile: Path) -> dict[str, Any]:
    adapted: dict[str, Any] = json.loads(run_caddy("adapt", caddyfile).stdout)
    return adapted


@pytest.mark.parametrize("which", ["compose", "cluster"])
def test_caddy_bounds_slow_headers_and_bodies(which: str, tmp_path: Path) -> None:
    if which == "compose":
        caddyfile = ROOT / "Caddyfile"
    else:
        caddyfile = tmp_path / "Caddyfile"
        caddyfile.write_text(_caddyfile(18080, 12019, [18001, 18002]))
    servers = _adapt(caddyfile)["apps"]["http"]["servers"]
    assert servers
    for server in servers.values():
        assert 0 < server["read_header_timeout"] <= 30 * SECOND
        assert 0 < server["read_timeout"] <= 30 * 60 * SECOND
