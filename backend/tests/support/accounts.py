"""Accounts for tests: a secret the app accepts outside development, and sign-ups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

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


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> Account:
    """A new account, signed in."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(id=body["user"]["id"], email=body["user"]["email"], token=body["access_token"])


async def new_api_key(client: httpx.AsyncClient, account: Account, name: str = "ci") -> str:
    """The secret of a fresh API key of `account`."""
    response = await client.post(
        "/api/v1/auth/api-keys", json={"name": name}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])
