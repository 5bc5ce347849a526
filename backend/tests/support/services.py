"""Skip a test whose service is missing, or fail it when CI requires every service."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def services_required() -> bool:
    return os.environ.get("CHITRAM_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> NoReturn:
    """Skip with a visible reason, or fail when CHITRAM_REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(f"service missing: {reason}")
