"""What a request presents to say who is calling, read from it once by `app.auth.middleware`.

`AuthService.authenticate` resolves these into a `Principal`; it never sees the request."""

from __future__ import annotations

from dataclasses import dataclass

SESSION_COOKIE = "chitram_session"


@dataclass(frozen=True, slots=True)
class BearerToken:
    """An access token, from `Authorization: Bearer <token>`."""

    token: str


@dataclass(frozen=True, slots=True)
class ApiKeySecret:
    """An API key as sent in `X-API-Key` (its shape is the service's to check)."""

    key: str


@dataclass(frozen=True, slots=True)
class SessionSecret:
    """A browser's session cookie, sent to a page."""

    secret: str


Credential = BearerToken | ApiKeySecret | SessionSecret


@dataclass(frozen=True, slots=True)
class Credentials:
    """A request's one credential, or None from an anonymous caller (two are refused
    before this is built), and the client address that names an anonymous caller."""

    address: str
    presented: Credential | None = None
