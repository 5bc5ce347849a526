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
    # They carry a CSRF token and who is signed in, and may show a private image.
    "Cache-Control": "private, no-store",
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


def exposure(seconds: float) -> str:
    """A shutter speed as photographers write it: 1/250 s, 0.8 s, 2 s."""
    if 0 < seconds < 0.5:
        return f"1/{round(1 / seconds)} s"
    return f"{seconds:.1f}".removesuffix(".0") + " s"


def aperture(f_number: float) -> str:
    return "f/" + f"{f_number:.1f}".removesuffix(".0")


def focal_length(mm: float) -> str:
    return f"{mm:.1f}".removesuffix(".0") + " mm"


def taken_at(value: str) -> str:
    """The camera's clock: with its offset when the file recorded one, else as it said."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    shown = moment.strftime("%-d %b %Y, %H:%M")
    if moment.tzinfo is None:
        return shown + " (camera time)"
    offset = moment.strftime("%z")
    return f"{shown} (UTC{offset[:3]}:{offset[3:]})"


templates.env.filters["human_bytes"] = human_bytes
templates.env.filters["human_time"] = human_time
templates.env.filters["exposure"] = exposure
templates.env.filters["aperture"] = aperture
templates.env.filters["focal_length"] = focal_length
templates.env.filters["taken_at"] = taken_at
