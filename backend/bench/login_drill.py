"""Concurrent-login drill: does the account lockout hold when guesses arrive all at once?

Starts two `chitram serve` processes on loopback sharing one SQLite file and one Redis
(the limiter's counters live there), registers one account, then fires a burst of wrong
passwords plus the right one, all at the same moment, spread over both processes. It
reports how many passwords were actually checked (401 wrong, 200 right) and how many
were refused unchecked (429), then whether the right password is refused once locked.

The lockout holds when at most LOGIN_MAX_FAILURES attempts are checked in the burst (a
right password inside that budget may sign in; it clears the count, as any successful
login does) and the right password afterwards gets 429.

    cd backend && uv run python -m bench.login_drill
    uv run python -m bench.login_drill --guesses 200 --servers 1   # without Redis too

Bounded: loopback only, one burst per round, a timeout on every request, servers
stopped and their data and Redis keys removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import _find_chitram, describe_code, machine_info, timestamp, write_results
from tests.support.accounts import PASSWORD
from tests.support.server import LiveServer, live_server

REQUEST_TIMEOUT = 60.0
MAX_GUESSES = 1000  # bounded: one burst never exceeds this


def _redis_reachable(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


@contextlib.contextmanager
def _servers(count: int, env: dict[str, str]) -> Iterator[list[LiveServer]]:
    """`count` servers over one data directory (the first one migrates it)."""
    with (
        tempfile.TemporaryDirectory(prefix="chitram-drill-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        full = {"DATA_DIR": str(Path(tmp) / "data"), **env}
        servers = [
            stack.enter_context(live_server(full, Path(tmp), migrate=index == 0))
            for index in range(count)
        ]
        yield servers


async def _attempt(client: httpx.AsyncClient, url: str, email: str, password: str) -> int:
    response = await client.post(
        f"{url}/api/v1/auth/login", json={"email": email, "password": password}
    )
    return response.status_code


async def _round(servers: list[LiveServer], guesses: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=guesses + 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client:
        email = f"drill-{secrets.token_hex(4)}@example.com"
        registered = await client.post(
            f"{servers[0].url}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        registered.raise_for_status()
        # Every attempt is created before any is awaited: they go out together.
        wrong = [
            _attempt(client, servers[i % len(servers)].url, email, f"wrong guess {i}")
            for i in range(guesses)
        ]
        right = _attempt(client, servers[guesses % len(servers)].url, email, PASSWORD)
        *wrong_statuses, right_status = await asyncio.gather(*wrong, right)
        after = [await _attempt(client, s.url, email, PASSWORD) for s in servers]
    wrong_counts = Counter(wrong_statuses)
    return {
        "wrong_guesses": guesses,
        "wrong_checked_401": wrong_counts.get(401, 0),
        "wrong_refused_429": wrong_counts.get(429, 0),
        "wrong_other": {str(k): v for k, v in wrong_counts.items() if k not in (401, 429)},
        "right_password_in_burst": right_status,
        "right_password_after_burst": after,
    }


def _holds(result: dict[str, Any], max_failures: int) -> bool:
    checked = result["wrong_checked_401"] + (result["right_password_in_burst"] == 200)
    # A right password inside the budget clears the count, which lets at most one more
    # budget of wrong guesses through (as any successful login would).
    budget = max_failures * (2 if result["right_password_in_burst"] == 200 else 1)
    return checked <= budget and all(s == 429 for s in result["right_password_after_burst"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guesses", type=int, default=40, help="wrong passwords per burst")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, each on a new account")
    parser.add_argument("--servers", type=int, default=2, help="API processes (2 needs Redis)")
    parser.add_argument("--max-failures", type=int, default=5, help="LOGIN_MAX_FAILURES")
    parser.add_argument(
        "--redis-url", default=os.environ.get("CHITRAM_TEST_REDIS", "redis://127.0.0.1:6379/9")
    )
    args = parser.parse_args(argv)
    if not 1 <= args.guesses <= MAX_GUESSES or not 1 <= args.servers <= 4:
        parser.error(f"--guesses 1..{MAX_GUESSES}, --servers 1..4")
    _find_chitram()
    prefix = f"chitram-drill-{secrets.token_hex(6)}"
    env = {
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        "STORAGE_BACKEND": "local",
        "LOGIN_MAX_FAILURES": str(args.max_failures),
        # The per-address limit would refuse one client's burst on its own: raise it so
        # the per-account lockout is what is measured.
        "RATE_LIMIT_AUTH": f"{10 * (MAX_GUESSES + 10)}/minute",
        "REDIS_PREFIX": prefix,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL", "DATA_DIR"):
        os.environ.pop(name, None)
    redis_used = _redis_reachable(args.redis_url)
    if redis_used:
        env["REDIS_URL"] = args.redis_url
    elif args.servers > 1:
        print(f"Redis at {args.redis_url} does not answer: one server, in-process counters")
        args.servers = 1
    results: dict[str, Any] = {
        "started_at": timestamp(),
        "machine": machine_info(),
        "servers": args.servers,
        "redis": redis_used,
        "login_max_failures": args.max_failures,
        "rounds": [],
    }
    try:
        with _servers(args.servers, env) as servers:
            for _ in range(args.rounds):
                results["rounds"].append(asyncio.run(_round(servers, args.guesses)))
    finally:
        if redis_used:
            _forget_keys(args.redis_url, prefix)
    results["lockout_holds"] = all(_holds(r, args.max_failures) for r in results["rounds"])
    _report(results)
    path = write_results("login_drill", results)
    print(f"\n{describe_code(results['machine']['code'])}; results in {path}")
    return 0 if results["lockout_holds"] else 1


def _forget_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _report(results: dict[str, Any]) -> None:
    shape = f"{results['servers']} server(s)" + (" sharing Redis" if results["redis"] else "")
    print(f"Login drill: {shape}, LOGIN_MAX_FAILURES={results['login_max_failures']}")
    for number, r in enumerate(results["rounds"], 1):
        print(
            f"  round {number}: {r['wrong_guesses']} wrong + 1 right at once -> "
            f"{r['wrong_checked_401']} checked (401), {r['wrong_refused_429']} refused (429)"
            f"{', other ' + str(r['wrong_other']) if r['wrong_other'] else ''}; "
            f"right password in the burst: {r['right_password_in_burst']}, "
            f"after: {r['right_password_after_burst']}"
        )
    print("Lockout holds" if results["lockout_holds"] else "LOCKOUT BYPASSED")


if __name__ == "__main__":
    sys.exit(main())
