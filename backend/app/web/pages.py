"""Rendering pages: the CSRF cookie, the signed-in user, and the headers every page gets."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.credentials import SESSION_COOKIE
from app.auth.errors import SessionEnded
from app.auth.principal import Principal
from app.config import Settings
from app.errors import Forbidden
from app.http.deps import resources_of
from app.http.net import forwarded_https
from app.models import User
from app.web import csrf
from app.web.templates import PAGE_HEADERS, templates

SIGNED_OUT = "You have been signed out: your session ended. Log in again."


def is_https(request: Request, settings: Settings) -> bool:
    """Whether cookies must be Secure: the request came over HTTPS, directly or through
    a trusted proxy's `X-Forwarded-Proto` (`TRUSTED_PROXIES`, loopback always), or the
    public URL is HTTPS."""
    public = settings.public_base_url or ""
    return forwarded_https(request.scope, settings) or public.startswith("https://")


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


async def page(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """`render` with the signed-in user looked up: what every page handler returns."""
    resources = resources_of(request)
    user = await resources.auth.signed_in(principal_of(request))
    return render(request, resources.settings, name, context, user=user, status=status)


def sign_in_first(request: Request, back_to: str) -> Response | None:
    """For a page only a signed-in person can see: the login page (which says so when the
    session ended) and back to `back_to` after; None when signed in."""
    if principal_of(request).user_id is not None:
        return None
    login = f"/login?next={quote(local_path(back_to, '/'), safe='/')}"
    return refuse_ended_session(request, back_to) or redirect(request, login)


async def guard_action(request: Request, back_to: str, submitted: str | None) -> Response | None:
    """Before a form's change: an ended session is answered as signed out (never done
    anonymously instead), then the CSRF token must be this browser's."""
    signed_out = refuse_ended_session(request, back_to)
    if signed_out is not None:
        return signed_out
    await require_csrf(request, resources_of(request).settings, submitted)
    return None


def render(
    request: Request,
    settings: Settings,
    name: str,
    context: dict[str, Any],
    *,
    user: User | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A page with the browser's CSRF token (its pre-session cookie set when new) and safe
    headers; a browser whose session has ended is told it is signed out."""
    cookie = request.cookies.get(csrf.CSRF_COOKIE)
    fresh = not cookie
    cookie = cookie or csrf.new_cookie_value()
    binding = _csrf_binding(request, cookie)
    assert binding is not None  # the cookie is there, new or not
    full = {
        "user": user,
        "csrf_token": csrf.token_for(settings.jwt_secret, binding),
        "notice": None,
        **context,
    }
    if full["notice"] is None and session_ended(request):
        full["notice"] = SIGNED_OUT
    response = templates.TemplateResponse(request, name, full, status_code=status)
    response.headers.update(PAGE_HEADERS)
    if fresh:
        set_pre_session_cookie(request, settings, response, cookie)
    forget_ended_session(request, response)
    return response


def set_pre_session_cookie(
    request: Request, settings: Settings, response: Response, value: str | None = None
) -> None:
    """The browser's pre-session CSRF secret; a new one at sign-in and sign-out."""
    response.set_cookie(
        csrf.CSRF_COOKIE,
        value or csrf.new_cookie_value(),
        httponly=True,
        samesite="lax",
        secure=is_https(request, settings),
        path="/",
    )


def session_ended(request: Request) -> bool:
    """Whether the browser sends a session cookie that opens nothing any more (expired,
    signed out elsewhere): it is signed out, and must be told so."""
    return bool(request.cookies.get(SESSION_COOKIE)) and principal_of(request).session_id is None


def forget_ended_session(request: Request, response: Response) -> None:
    """A session cookie that opens nothing any more is dropped, so the browser shows as
    signed out instead of failing."""
    if session_ended(request):
        response.delete_cookie(SESSION_COOKIE, path="/")


def refuse_ended_session(request: Request, back_to: str) -> Response | None:
    """The signed-out answer to an action asked in the name of an ended session: never
    done anonymously instead (contract sections 1 and 12). 401 for a script's fetch,
    the login page (which says so) for a form; None while the session holds."""
    if not session_ended(request):
        return None
    if "application/json" in request.headers.get("accept", ""):
        raise SessionEnded()
    # The cookie stays for the login page, which tells the person and then drops it.
    login = f"/login?next={quote(local_path(back_to, '/'), safe='/')}"
    return RedirectResponse(login, status_code=303, headers={"Cache-Control": "no-store"})


async def require_csrf(request: Request, settings: Settings, submitted: str | None) -> None:
    """Refuse a state-changing request whose token is not bound to this browser: to its
    session when signed in, else to its pre-session cookie."""
    token = submitted or request.headers.get(csrf.CSRF_HEADER)
    binding = _csrf_binding(request, request.cookies.get(csrf.CSRF_COOKIE))
    if not csrf.is_valid(settings.jwt_secret, binding, token):
        raise Forbidden("The form has expired or did not come from this site; reload and retry")


def _csrf_binding(request: Request, pre_session_cookie: str | None) -> str | None:
    """What this browser's CSRF token is bound to: its session once signed in (a pair
    planted from another browser never matches it), else its pre-session secret."""
    session_id = principal_of(request).session_id
    if session_id is not None:
        return csrf.session_binding(session_id)
    return csrf.pre_session_binding(pre_session_cookie) if pre_session_cookie else None


def redirect(request: Request, url: str) -> RedirectResponse:
    """303 to `url` (a page of this site), dropping a session cookie that has ended."""
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    forget_ended_session(request, response)
    return response


def local_path(candidate: str | None, default: str) -> str:
    """`candidate` if it is a path on this site, else `default` (no open redirects)."""
    if (
        not candidate
        or not candidate.startswith("/")
        or candidate.startswith("//")
        or "\\" in candidate
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate)
    ):
        return default
    return candidate
