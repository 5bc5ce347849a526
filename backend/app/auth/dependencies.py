"""The caller as a dependency, with the security schemes Swagger's Authorize button uses.

`app.auth.middleware` has already resolved the caller; these dependencies read it and
declare the schemes, so the docs show which routes take a token or key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.http import routes

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl=routes.AUTH_TOKEN,
    auto_error=False,
    description="A token from /auth/login or /auth/token (the Authorize button)",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from /auth/api-keys"
)


async def get_principal(
    request: Request,
    _token: Annotated[str | None, Security(bearer_scheme)],
    _key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal:
    """Who is calling: a user, an API key, or an anonymous address."""
    principal: Principal = request.state.principal
    return principal


async def get_signed_in(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The caller, who must be signed in (token or API key)."""
    if principal.user_id is None:
        raise Unauthorized()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
SignedInDep = Annotated[Principal, Depends(get_signed_in)]
