"""Browser tests: Debian's chromium driven by the `playwright` package (never a browser
download), against `chitram serve` running as a real process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts import TEST_JWT_SECRET
from tests.support.server import LiveServer, live_server
from tests.support.services import service_missing

CHROMIUM = os.environ.get("CHITRAM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def site_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(data_dir),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "RATE_LIMIT_UPLOAD": "1000/minute",
        "RATE_LIMIT_AUTH": "500/minute",
        **extra,
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Playwright's sync API runs an event loop of its own
    in this thread, so it must be closed before any asyncio test runs."""
    if not Path(CHROMIUM).exists():
        service_missing(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # As root (CI) chromium refuses to start with its sandbox.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An embedded Chitram (SQLite, local disk, thumbnails in-process) for a test module."""
    data_dir = tmp_path_factory.mktemp("site")
    with live_server(site_env(data_dir), data_dir) as server:
        yield server


class Browser:
    """One browser profile (its own cookies and local storage) on the site."""

    def __init__(self, browser: Any, url: str, **options: Any) -> None:
        self.context = browser.new_context(base_url=url, viewport=DESKTOP, **options)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.accept_dialogs = True

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept() if self.accept_dialogs else dialog.dismiss()

    def shoot(self, name: str) -> None:
        """Screenshots of the current page at desktop and phone widths (CI artifacts)."""
        SCREENSHOTS.mkdir(exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
            if label == "phone":  # a narrow screen never scrolls sideways
                overflow = self.page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{name} is {overflow}px too wide on a phone"
        self.page.set_viewport_size(DESKTOP)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser: Any, site: LiveServer) -> Iterator[Browser]:
    profile = Browser(browser, site.url)
    yield profile
    profile.close()
    assert not profile.errors, profile.errors  # no script error on any page
