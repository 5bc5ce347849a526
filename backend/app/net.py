"""Who is on the other end: the client address, believing only trusted proxies."""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

from app.config import Settings

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


# Answers by (proxies believed, peer, X-Forwarded-For): parsing addresses is a visible
# share of a cached read. Bounded, since the header comes from clients.
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


def _resolve(peer: str, forwarded: str, settings: Settings) -> str:
    trusted = (*LOOPBACK, *settings.trusted_proxies)

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
