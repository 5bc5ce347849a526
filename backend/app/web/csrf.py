"""CSRF protection by signed double submit (OWASP's recommended stateless pattern).

Every browser gets a random `chitram_csrf` cookie; forms and HTMX requests send
HMAC(server secret, cookie) back. A cross-site page can make the browser send the cookie
but can neither read it nor compute the HMAC, and a cookie planted by a sibling
subdomain is useless without the server's secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

CSRF_COOKIE = "chitram_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def token_for(server_secret: str, cookie_value: str) -> str:
    """The token that pages embed for the browser holding `cookie_value`."""
    key = server_secret.encode("utf-8", "surrogatepass")
    return hmac.new(key, b"csrf\0" + cookie_value.encode(), hashlib.sha256).hexdigest()


def is_valid(server_secret: str, cookie_value: str | None, submitted: str | None) -> bool:
    if not cookie_value or not submitted:
        return False
    return hmac.compare_digest(token_for(server_secret, cookie_value), submitted)
