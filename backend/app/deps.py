"""Annotated dependencies: how routes reach the resources built in the lifespan.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a worker
thread, and a thread hop costs more than the whole request on a small machine."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.images.service import Caller, ImageService
from app.lifespan import Resources

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


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
    """The peer address, or the first untrusted hop of X-Forwarded-For behind a trusted proxy."""
    peer = request.client.host if request.client else "0.0.0.0"  # noqa: S104
    trusted = (*LOOPBACK, *settings.trusted_proxies)

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not is_trusted(peer):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


async def get_caller(request: Request, settings: SettingsDep) -> Caller:
    return Caller(scope=f"ip:{client_ip(request, settings)}")


CallerDep = Annotated[Caller, Depends(get_caller)]


def request_base_url(request: Request) -> str:
    """Scheme, host and root path of this request, without a trailing slash."""
    return str(request.base_url).rstrip("/")


async def base_url(request: Request) -> str:
    return request_base_url(request)


BaseUrlDep = Annotated[str, Depends(base_url)]
