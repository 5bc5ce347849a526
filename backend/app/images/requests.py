"""What the upload service needs of an HTTP upload request: built here for the API's
routes and the web UI's upload page alike, so the web UI never imports the API router."""

from __future__ import annotations

from fastapi import Request

from app.auth.principal import Principal
from app.http.deps import resources_of
from app.http.net import client_address
from app.images.upload import UploadRequest


def upload_request(
    request: Request, caller: Principal, base: str, idempotency_key: str | None = None
) -> UploadRequest:
    """What the image service needs of an upload request (the web UI's uploads too)."""
    length = request.headers.get("content-length")
    return UploadRequest(
        body=request.stream(),
        content_type=request.headers.get("content-type", ""),
        content_length=int(length) if length and length.isdigit() else None,
        caller=caller,
        base_url=base,
        request_id=request.state.request_id,
        idempotency_key=idempotency_key,
        client=client_address(request.scope, resources_of(request).settings),
        expires_in=request.headers.get("expires-in"),
    )
