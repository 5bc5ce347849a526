"""The Jinja2 environment of the web UI (autoescaped) and its filters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Pages run only our own scripts and styles; no page may be framed (clickjacking).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # they carry a CSRF token and who is signed in
}

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_time(moment: datetime) -> str:
    return moment.strftime("%-d %b %Y, %H:%M UTC")


templates.env.filters["human_bytes"] = human_bytes
templates.env.filters["human_time"] = human_time
