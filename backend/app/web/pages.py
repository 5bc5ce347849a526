"""Rendering pages: the CSRF cookie, the signed-in user, and the headers every page gets."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.principal import Principal
from app.auth.service import SESSION_COOKIE
from app.config import Settings
from app.errors import Forbidden
from app.models import User
from app.web import csrf
from app.web.templates import PAGE_HEADERS, templates


def is_https(request: Request, settings: Settings) -> bool:
    """Whether cookies must be Secure: the request came over HTTPS (uvicorn believes
    X-Forwarded-Proto from its trusted proxies) or the public URL is HTTPS."""
    public = settings.public_base_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def render(
    request: Request,
    settings: Settings,
    name: str,
    context: dict[str, Any],
    *,
    user: User | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A page with the browser's CSRF token (its cookie set when new) and safe headers."""
    cookie = request.cookies.get(csrf.CSRF_COOKIE)
    fresh = cookie is None
    cookie = cookie or csrf.new_cookie_value()
    full = {
        "user": user,
        "csrf_token": csrf.token_for(settings.jwt_secret, cookie),
        "notice": None,
        **context,
    }
    response = templates.TemplateResponse(request, name, full, status_code=status)
    response.headers.update(PAGE_HEADERS)
    if fresh:
        response.set_cookie(
            csrf.CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="lax",
            secure=is_https(request, settings),
            path="/",
        )
    forget_ended_session(request, response)
    return response


def forget_ended_session(request: Request, response: Response) -> None:
    """A session cookie that opens nothing any more (expired, signed out elsewhere) is
    dropped, so the browser shows as signed out instead of failing."""
    if SESSION_COOKIE in request.cookies and principal_of(request).session_id is None:
        response.delete_cookie(SESSION_COOKIE, path="/")


async def require_csrf(request: Request, settings: Settings, submitted: str | None) -> None:
    """Refuse a state-changing request whose token does not match the browser's cookie."""
    token = submitted or request.headers.get(csrf.CSRF_HEADER)
    if not csrf.is_valid(settings.jwt_secret, request.cookies.get(csrf.CSRF_COOKIE), token):
        raise Forbidden("The form has expired or did not come from this site; reload and retry")


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


def thumb_box(width: int, height: int, max_side: int) -> tuple[int, int]:
    """A thumbnail's displayed size: fits `max_side`, never upscaled (as the pipeline)."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))
