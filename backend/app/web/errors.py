"""Errors as pages of the site (a friendly 404, 500...), for browsers.

`app.main` registers `error_page` with the error handlers, which call it whenever a
client prefers HTML; the handlers themselves know nothing of templates."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from app.web.templates import PAGE_HEADERS, templates

TITLES = {
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    408: "Too slow",
    413: "Too large",
    429: "Slow down",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


def error_page(
    request: Request,
    status: int,
    message: str,
    request_id: str | None,
    headers: dict[str, str] | None,
) -> Response:
    """The error as a page of the site, with the headers every page gets."""
    context = {
        "title": TITLES.get(status, "Something is wrong with this request"),
        "message": message,
        "request_id": request_id,
        "user": None,
        "csrf_token": "",
        "notice": None,
    }
    response = templates.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers.update({**PAGE_HEADERS, **(headers or {})})
    return response
