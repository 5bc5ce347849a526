"""Delete tokens: random, shown once, stored as a SHA-256 digest, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_delete_token() -> tuple[str, str]:
    """A fresh token and the digest to store."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)


def mask(token: str, secret: str) -> str:
    """XOR the token with a pad derived from `secret` (hex out); `mask` undoes itself."""
    raw = token.encode()
    pad = hashlib.shake_256(b"chitram-delete-token\0" + secret.encode()).digest(len(raw))
    return bytes(a ^ b for a, b in zip(raw, pad, strict=True)).hex()


def unmask(masked: str, secret: str) -> str:
    raw = bytes.fromhex(masked)
    pad = hashlib.shake_256(b"chitram-delete-token\0" + secret.encode()).digest(len(raw))
    return bytes(a ^ b for a, b in zip(raw, pad, strict=True)).decode()
