"""Request and response bodies of the accounts API."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

MIN_PASSWORD = 8
MAX_PASSWORD = 128
MAX_LOGIN_PASSWORD = 1024  # longer cannot match any account; refused before hashing


def normalise_email(email: str) -> str:
    """The stored form: email-validator's normal form, then case-folded, so emails
    compare case-insensitively (local parts included, as every major provider does)."""
    return email.lower()


def _password(value: str) -> str:
    """NFKC-normalised (as NIST 800-63B advises), so the same password typed on another
    keyboard still matches; only encodable text (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("the password must be valid Unicode text") from exc
    return unicodedata.normalize("NFKC", value)


def _new_password(value: str) -> str:
    value = _password(value)
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValueError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return value


Email = Annotated[EmailStr, AfterValidator(normalise_email)]
# 8 to 128 characters as sent, and still after normalisation.
NewPassword = Annotated[
    str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD), AfterValidator(_new_password)
]
LoginPassword = Annotated[
    str, Field(min_length=1, max_length=MAX_LOGIN_PASSWORD), AfterValidator(_password)
]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.com", "password": "correct horse"}]}
    )

    email: Email = Field(description="Compared case-insensitively")
    password: NewPassword = Field(
        description="8 to 128 characters, any Unicode (NFKC-normalised, and 8 to 128 after)"
    )


class UserLogin(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.com", "password": "correct horse"}]}
    )

    email: Email
    password: LoginPassword


class TokenForm(BaseModel):
    """The OAuth2 password grant's form (RFC 6749, section 4.3), as Swagger's Authorize
    button sends it; `username` is the account's email."""

    grant_type: Literal["password"] | None = None
    username: Email = Field(description="The account's email address")
    password: LoginPassword
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class UserRead(BaseModel):
    """An account and its usage."""

    id: uuid.UUID
    email: str
    created_at: datetime
    image_count: int
    storage_used: int = Field(description="Bytes of every image this user uploaded")
    storage_quota: int = Field(description="Bytes this user may store")


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)


class SessionRead(TokenRead):
    """A new session: the account and a token for it."""

    user: UserRead
    expires_in: int = Field(description="Seconds until the token expires")


def _key_name(value: str) -> str:
    value = value.strip()
    if not value or not value.isprintable():
        raise ValueError("the name must be printable text")
    return value


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "backup script"}]})

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            description="1 to 100 printable characters (no control characters), not blank; "
            "leading and trailing spaces are trimmed",
        ),
        AfterValidator(_key_name),
    ]


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="Recorded to the minute")


class ApiKeyCreated(BaseModel):
    """A new key; `key` is shown this once and never again."""

    id: uuid.UUID
    name: str
    prefix: str
    key: str
    created_at: datetime


class ApiKeyList(BaseModel):
    items: list[ApiKeyRead]
