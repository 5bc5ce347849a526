"""Access tokens (JWT, HMAC-signed, algorithm pinned) and API key secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt

from app.auth.errors import TokenExpired, Unauthorized
from app.config import Settings
from app.models.base import utcnow

REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti"]
API_KEY_PREFIX = "chk_"  # "chitram key": recognisable in logs, config files and scanners
API_KEY_SECRET_CHARS = 43  # token_urlsafe(32): 256 random bits
API_KEY_SHOWN_CHARS = 12  # what lists show: the prefix and 8 characters of the secret


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds


def issue_token(settings: Settings, user_id: uuid.UUID) -> IssuedToken:
    """A signed access token for `user_id`."""
    lifetime = timedelta(minutes=settings.jwt_expire_minutes)
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)
    return IssuedToken(token, max(1, int(lifetime.total_seconds())))


def token_subject(settings: Settings, token: str) -> uuid.UUID:
    """The user id a token was issued to; raises TokenExpired or Unauthorized.

    The algorithm comes from the settings, never from the token's header: `none`, or an
    HMAC keyed with some public key, is refused by PyJWT before any signature check."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is not valid") from exc
    try:
        return uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Unauthorized("The token is not valid") from exc


def digest(secret: str) -> str:
    """What we store of a random secret (API key, web session): its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (secret shown once, its prefix for lists, the digest to store)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:API_KEY_SHOWN_CHARS], digest(key)


def new_session_secret() -> tuple[str, str]:
    """A web session's cookie value and the digest to store."""
    secret = secrets.token_urlsafe(32)
    return secret, digest(secret)


def looks_like_api_key(key: str) -> bool:
    """A cheap shape check, so malformed keys never reach the database."""
    return (
        key.startswith(API_KEY_PREFIX)
        and len(key) == len(API_KEY_PREFIX) + API_KEY_SECRET_CHARS
        and key.isascii()
    )
