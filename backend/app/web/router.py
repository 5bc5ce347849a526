"""Web pages: thin, like the API routers; the same services do the work. The upload page
and signing in live here; the image page, the gallery and the albums in their modules."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from app.auth.credentials import SESSION_COOKIE
from app.auth.schemas import UserCreate, UserLogin
from app.errors import AppError
from app.http import routes
from app.http.deps import request_base_url, resources_of
from app.images import formats
from app.images.requests import upload_request
from app.web import albums, images, library
from app.web.pages import (
    is_https,
    local_path,
    page,
    principal_of,
    redirect,
    refuse_ended_session,
    require_csrf,
    session_ended,
    set_pre_session_cookie,
)

router = APIRouter(include_in_schema=False)
router.include_router(images.router)
router.include_router(library.router)
router.include_router(albums.router)


# ---- upload -------------------------------------------------------------------------


@router.get(routes.PAGE_HOME, response_class=HTMLResponse)
async def home(request: Request, deleted: bool = False) -> HTMLResponse:
    """The upload page."""
    settings = resources_of(request).settings
    signed_in = principal_of(request).user_id is not None
    return await page(
        request,
        "home.html",
        {
            "can_upload": signed_in or settings.allow_anonymous_uploads,
            "max_bytes": settings.max_upload_bytes,
            "accept": ",".join(formats.named(f).mime_type for f in settings.allowed_formats),
            "formats": ", ".join(formats.named(f).display_name for f in settings.allowed_formats),
            "notice": "The image was deleted." if deleted else None,
        },
    )


@router.post(routes.PAGE_UPLOAD)
async def upload(request: Request, csrf_token: Annotated[str | None, Query()] = None) -> Response:
    """One image from the upload page: JSON for its script, a redirect without script.
    A browser whose session has ended is answered as signed out, never uploads
    anonymously instead."""
    resources = resources_of(request)
    signed_out = refuse_ended_session(request, "/")
    if signed_out is not None:
        return signed_out
    await require_csrf(request, resources.settings, csrf_token)
    uploaded = await resources.uploads.upload(
        upload_request(request, principal_of(request), request_base_url(request))
    )
    page = f"/i/{uploaded.id}"
    if "application/json" not in request.headers.get("accept", ""):
        return redirect(request, page)
    body = {**uploaded.model_dump(mode="json"), "page_url": page}
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


# ---- sign in and out ----------------------------------------------------------------


def _form_context(
    action: str, next_path: str, email: str = "", error: str | None = None
) -> dict[str, Any]:
    heading = "Register" if action == routes.PAGE_REGISTER else "Log in"
    next_query = f"?next={quote(next_path, safe='/')}" if next_path != routes.PAGE_GALLERY else ""
    return {
        "heading": heading,
        "action": action,
        "next": next_path,
        "next_query": next_query,
        "email": email,
        "error": error,
    }


@router.get(routes.PAGE_LOGIN, response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    if principal_of(request).user_id is not None:
        return redirect(request, local_path(next, routes.PAGE_GALLERY))
    return await page(
        request,
        "auth_form.html",
        _form_context(routes.PAGE_LOGIN, local_path(next, routes.PAGE_GALLERY)),
    )


@router.get(routes.PAGE_REGISTER, response_class=HTMLResponse)
async def register_page(request: Request, next: str | None = None) -> Response:
    if principal_of(request).user_id is not None:
        return redirect(request, local_path(next, routes.PAGE_GALLERY))
    context = _form_context(routes.PAGE_REGISTER, local_path(next, routes.PAGE_GALLERY))
    return await page(request, "auth_form.html", context)


Field = Annotated[str, Form(max_length=2048)]


@router.post(routes.PAGE_LOGIN)
@router.post(routes.PAGE_REGISTER)
async def sign_in(
    request: Request,
    email: Field = "",
    password: Field = "",
    next: Field = routes.PAGE_GALLERY,
    csrf_token: Field = "",
) -> Response:
    """Log in, or create an account: either way a session cookie, and back to where the
    person was going."""
    action = request.scope["route"].path  # PAGE_LOGIN or PAGE_REGISTER
    return await _sign_in(request, action, email, password, next, csrf_token)


async def _sign_in(
    request: Request, action: str, email: str, password: str, next_path: str, token: str
) -> Response:
    resources = resources_of(request)
    await require_csrf(request, resources.settings, token)
    target = local_path(next_path, routes.PAGE_GALLERY)
    try:
        if action == routes.PAGE_REGISTER:
            user = await resources.auth.create_user(UserCreate(email=email, password=password))
        else:
            user = await resources.auth.check_password(UserLogin(email=email, password=password))
    except ValidationError as exc:
        message = "; ".join(_readable(e) for e in exc.errors())
        return await _form_error(request, action, target, email, message, 422)
    except AppError as exc:  # wrong password, taken email, too many tries (Retry-After)
        page = await _form_error(
            request, action, target, email, exc.detail_message, exc.status_code
        )
        page.headers.update(exc.headers)
        return page
    secret, max_age = await resources.auth.start_web_session(user.id)
    response = redirect(request, target)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_https(request, resources.settings),
        path="/",
    )
    # Pages now bind their CSRF tokens to the new session; the pre-session secret, which
    # may have been seen (or planted) before sign-in, is replaced too.
    set_pre_session_cookie(request, resources.settings, response)
    return response


def _readable(error: Any) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "input"
    return f"{field.capitalize()}: {str(error['msg']).removeprefix('Value error, ')}"


async def _form_error(
    request: Request, action: str, target: str, email: str, message: str, status: int
) -> HTMLResponse:
    context = _form_context(action, target, email[:320], message)
    return await page(request, "auth_form.html", context, status=status)


@router.post(routes.PAGE_LOGOUT)
async def logout(request: Request, csrf_token: Field = "") -> Response:
    """Sign out: the session ends on the server, and the cookie goes."""
    resources = resources_of(request)
    if session_ended(request):
        return redirect(request, "/")  # already signed out: nothing to end
    await require_csrf(request, resources.settings, csrf_token)
    await resources.auth.end_web_session(principal_of(request))
    response = redirect(request, "/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    set_pre_session_cookie(request, resources.settings, response)
    return response
