"""Accounts API routes: thin, each calls one service function and returns a schema."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from app.auth.dependencies import SignedInDep
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    SessionRead,
    TokenForm,
    TokenRead,
    UserCreate,
    UserLogin,
    UserRead,
)
from app.auth.service import AuthService
from app.http import routes
from app.http.openapi import errors

router = APIRouter(tags=["accounts"])


async def get_auth_service(request: Request) -> AuthService:
    service: AuthService = request.state.resources.auth
    return service


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


@router.post(
    routes.AUTH_REGISTER,
    status_code=status.HTTP_201_CREATED,
    response_model=SessionRead,
    responses=errors(409, 422, 429),
)
async def register(body: UserCreate, service: AuthServiceDep) -> SessionRead:
    """Create an account; answers with a token, as a login would."""
    return await service.register(body)


@router.post(routes.AUTH_LOGIN, response_model=SessionRead, responses=errors(401, 422, 429))
async def login(body: UserLogin, service: AuthServiceDep) -> SessionRead:
    """Sign in with email and password; 429 after repeated failures."""
    return await service.login(body)


@router.post(routes.AUTH_TOKEN, response_model=TokenRead, responses=errors(401, 422, 429))
async def token(form: Annotated[TokenForm, Form()], service: AuthServiceDep) -> TokenRead:
    """OAuth2 password form (`username` is the email), for Swagger's Authorize button."""
    session = await service.login(UserLogin(email=form.username, password=form.password))
    return TokenRead(access_token=session.access_token)


@router.get(routes.AUTH_ME, response_model=UserRead, responses=errors(401))
async def me(principal: SignedInDep, service: AuthServiceDep) -> UserRead:
    """The signed-in account, with its image count, storage used and quota."""
    return await service.me(principal)


@router.post(
    routes.API_KEYS,
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=errors(400, 401, 403, 422),
)
async def create_api_key(
    body: ApiKeyCreate, principal: SignedInDep, service: AuthServiceDep
) -> ApiKeyCreated:
    """Create an API key; its secret is in this response only. Needs a bearer token: an
    API key cannot create keys (403)."""
    return await service.create_api_key(principal, body.name)


@router.get(routes.API_KEYS, response_model=ApiKeyList, responses=errors(401))
async def list_api_keys(principal: SignedInDep, service: AuthServiceDep) -> ApiKeyList:
    """The caller's live keys, without their secrets."""
    return await service.list_api_keys(principal)


@router.delete(
    routes.API_KEY,
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 422),
)
async def revoke_api_key(
    key_id: uuid.UUID, principal: SignedInDep, service: AuthServiceDep
) -> Response:
    """Revoke one of the caller's keys: it is refused from now on. Needs a bearer
    token: an API key cannot revoke keys (403)."""
    await service.revoke_api_key(principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
