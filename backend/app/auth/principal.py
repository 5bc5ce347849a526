"""Who is calling: resolved once per request from its credentials (or their absence)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    `scope` names the caller for idempotency keys: `user:<id>` for a bearer token or
    web session, `key:<id>` for an API key, `ip:<address>` for anonymous callers. Rate
    limits count all of a user's tokens and keys as the user (`app.http.ratelimit.caller_key`)."""

    scope: str
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    session_id: str | None = None  # the web session's digest, for signing out

    @classmethod
    def anonymous(cls, address: str) -> Principal:
        return cls(scope=f"ip:{address}")

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Principal:
        return cls(scope=f"user:{user_id}", user_id=user_id)

    @classmethod
    def web_session(cls, user_id: uuid.UUID, session_id: str) -> Principal:
        return cls(scope=f"user:{user_id}", user_id=user_id, session_id=session_id)

    @classmethod
    def api_key(cls, user_id: uuid.UUID, key_id: uuid.UUID) -> Principal:
        return cls(scope=f"key:{key_id}", user_id=user_id, api_key_id=key_id)
