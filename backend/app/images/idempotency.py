"""Idempotent uploads: a key remembers the answer to one request, and replays it only
to that same request (contract §9)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from app.auth.principal import Principal
from app.config import Settings
from app.errors import AppError
from app.images import repository, tokens
from app.images.errors import IdempotencyKeyReused
from app.images.ingest import ReceivedFile
from app.images.presenter import delete_url
from app.images.schemas import ImageUploaded
from app.infra.db import Database
from app.models.base import utcnow

# Named in idempotency fingerprints, so that a route taking keys later can never replay
# this one's answers (today the upload is the only route that takes a key).
UPLOAD_ROUTE = "POST /api/v1/images/upload"
# Statuses of a body that could not be read as an upload; with a used key, a mismatch.
UNREADABLE_REQUEST = frozenset({400, 413, 415, 422})


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A caller's key, once the request it names has been read."""

    key_hash: str  # of the caller's scope and the raw key
    fingerprint: str  # of the request: see `fingerprint`
    secret: str  # the caller's scope and the raw key: masks a remembered delete token


class Replays:
    """Remembers upload answers under their keys and replays them to the same request."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    def key_hash(self, caller: Principal, key: str | None) -> str | None:
        """The stored name of the caller's key (its shape was checked where the route
        declares the `Idempotency-Key` header, before the body is read)."""
        if key is None:
            return None
        return hashlib.sha256(f"{caller.scope}\0{key}".encode()).hexdigest()

    async def refuse_if_used(self, key_hash: str, error: AppError) -> None:
        """A body we cannot read is not the request the key answered, if it did."""
        if await self._remembered(key_hash) is not None:
            raise IdempotencyKeyReused(headers=error.headers) from error

    async def replay(self, key: IdempotencyKey) -> ImageUploaded | None:
        """The remembered answer to this very request; None when the key is unused.

        The same key with a different request (another file, name, route or none at
        all) is refused: replaying would hand out another upload's image and token."""
        stored = await self._remembered(key.key_hash)
        if stored is None:
            return None
        stored_body, fingerprint = stored
        # Records from before fingerprints were kept (null) match no request.
        if fingerprint is None or not hmac.compare_digest(fingerprint, key.fingerprint):
            raise IdempotencyKeyReused()
        body = json.loads(stored_body)
        masked = body.pop("masked_delete_token", None)
        response = ImageUploaded.model_validate(body)
        if masked is not None:
            token = tokens.unmask(masked, key.secret)
            response.delete_token = token
            response.delete_url = delete_url(response.url, token)
        return response

    def remember(self, connection: Connection, key: IdempotencyKey, body: str) -> None:
        """Store `body` (see `replay_body`) under the key, in the upload's unit of work."""
        repository.save_idempotent_response(
            connection, key.key_hash, key.fingerprint, body, self._cutoff()
        )

    def _cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.settings.idempotency_ttl_seconds)

    async def _remembered(self, key_hash: str) -> tuple[str, str | None] | None:
        """The live record under the key: its response body and request fingerprint."""
        async with self.database.reader() as session:
            stored = await repository.get_idempotent_response(session, key_hash, self._cutoff())
        return None if stored is None else (stored[0], stored[1])


def replay_body(response: ImageUploaded, key: IdempotencyKey) -> str:
    """The answer as it is remembered: a delete token only masked."""
    body = response.model_dump(mode="json", exclude={"delete_token", "delete_url"})
    if response.delete_token is not None:
        body["masked_delete_token"] = tokens.mask(response.delete_token, key.secret)
    return json.dumps(body)


def fingerprint(
    route: str,
    caller: Principal,
    files: Sequence[ReceivedFile],
    fields: Mapping[str, str] | None = None,
) -> str:
    """What makes two uploads the same request: route, caller, the form fields the upload
    reads (title, expiry...) and, for each file part, its content hash, size and name."""
    parts = [[f.sha256, f.size, f.too_large, f.filename] for f in files]
    shape: list[object] = [route, caller.scope, parts]
    if fields:  # absent from older fingerprints: a request without them matches them
        shape.append(sorted(fields.items()))
    canonical = json.dumps(shape, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
