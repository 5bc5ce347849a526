"""Who is on the other end: the client address, believing only trusted proxies."""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

from app.config import Settings

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


# Answers by (proxies believed, peer, X-Forwarded-For): parsing addresses is a visible
# share of a cached read. Bounded, since the header comes from clients. A process-wide
# cache: docs/adr/0018-unit-of-work.md lists them all.
_KNOWN: dict[tuple[object, str, str], str] = {}
MAX_KNOWN = 10_000


def client_address(scope: Scope, settings: Settings) -> str:
    """The peer address, or the first untrusted hop of X-Forwarded-For behind a trusted proxy."""
    client = scope.get("client")
    peer = client[0] if client else "0.0.0.0"  # noqa: S104
    forwarded = ",".join(
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    )
    key = (settings.trusted_proxies, peer, forwarded)
    found = _KNOWN.get(key)
    if found is None:
        found = _resolve(peer, forwarded, settings)
        if len(_KNOWN) >= MAX_KNOWN:
            _KNOWN.clear()
        _KNOWN[key] = found
    return found


def forwarded_https(scope: Scope, settings: Settings) -> bool:
    """Whether the client spoke HTTPS: to us, or to a trusted proxy that says so with
    `X-Forwarded-Proto: https` (its first value: the scheme the outermost proxy saw)."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not _is_trusted(_canonical(client[0]) if client else "", settings):
        return False
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            first: str = value.decode("latin-1").split(",", 1)[0]
            return first.strip().lower() == "https"
    return False


def _resolve(peer: str, forwarded: str, settings: Settings) -> str:
    peer = _canonical(peer)
    if not _is_trusted(peer, settings):
        return peer
    hops = [_canonical(hop.strip()) for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, settings):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_trusted(address: str, settings: Settings) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in (*LOOPBACK, *settings.trusted_proxies))


def _canonical(address: str) -> str:
    """One spelling per client: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a
    dual-stack socket reports IPv4 peers) is its IPv4 address, so it shares its limits."""
    if ":" not in address:
        return address  # IPv4, or not an address at all: nothing to map
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
