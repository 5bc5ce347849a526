"""CSRF protection by signed double submit, bound to the session (OWASP's recommended
pattern).

Forms and HTMX requests send back HMAC(server secret, binding), where the binding is
what only this browser holds: its web session once signed in, and before that a random
pre-session secret in the `chitram_csrf` cookie (rotated at sign-in and sign-out). A
cross-site page can make the browser send its cookies but can neither read them nor
compute the HMAC. A pair planted from another browser (a sibling subdomain can set
cookies) opens nothing once the victim is signed in: it is not bound to their session."""

from __future__ import annotations

import hashlib
import hmac
import secrets

CSRF_COOKIE = "chitram_csrf"
CSRF_HEADER = "x-csrf-token"


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def session_binding(session_digest: str) -> str:
    return "session\0" + session_digest


def pre_session_binding(cookie_value: str) -> str:
    return "pre-session\0" + cookie_value


def token_for(server_secret: str, binding: str) -> str:
    """The token that pages embed for the browser holding `binding`."""
    key = server_secret.encode("utf-8", "surrogatepass")
    message = b"csrf\0" + binding.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def is_valid(server_secret: str, binding: str | None, submitted: str | None) -> bool:
    if not binding or not submitted:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a hostile form).
    expected = token_for(server_secret, binding).encode()
    return hmac.compare_digest(expected, submitted.encode("utf-8", "surrogatepass"))
