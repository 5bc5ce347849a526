"""Accounts for tests: a secret the app accepts outside development, and who signed up.

Signing up is a flow: `tests.support.flows.register`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Outside development the app refuses the default secret; tests run as "test".
TEST_JWT_SECRET = "chitram-test-secret-" + uuid.uuid4().hex + uuid.uuid4().hex  # 84 bytes
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
