"""Schemas shared by every domain: the error envelope."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]
    request_id: str | None


class ErrorEnvelope(BaseModel):
    """The one error shape every endpoint answers with."""

    error: ErrorBody
