"""Annotated dependencies: how routes reach the resources built in the lifespan.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a worker
thread, and a thread hop costs more than the whole request on a small machine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.images.service import Caller, ImageService
from app.lifespan import Resources
from app.net import client_address


def resources_of(request: Request) -> Resources:
    """The lifespan's resources; for hot routes that skip dependency resolution."""
    resources: Resources = request.state.resources
    return resources


async def get_resources(request: Request) -> Resources:
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_image_service(resources: ResourcesDep) -> ImageService:
    return resources.images


SettingsDep = Annotated[Settings, Depends(get_settings)]
ImageServiceDep = Annotated[ImageService, Depends(get_image_service)]


def client_ip(request: Request, settings: Settings) -> str:
    return client_address(request.scope, settings)


async def get_caller(request: Request, settings: SettingsDep) -> Caller:
    return Caller(scope=f"ip:{client_ip(request, settings)}")


CallerDep = Annotated[Caller, Depends(get_caller)]


def request_base_url(request: Request) -> str:
    """Scheme, host and root path of this request, without a trailing slash."""
    return str(request.base_url).rstrip("/")


async def base_url(request: Request) -> str:
    return request_base_url(request)


BaseUrlDep = Annotated[str, Depends(base_url)]
