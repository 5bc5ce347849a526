"""Account rules: sign-up, login, tokens, API keys, and resolving who is calling."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from app.auth import repository, tokens
from app.auth.credentials import ApiKeySecret, BearerToken, Credentials, SessionSecret
from app.auth.errors import ApiKeyNotFound, EmailExists, InvalidCredentials, Unauthorized
from app.auth.passwords import Passwords
from app.auth.principal import Principal
from app.auth.schemas import (
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyRead,
    SessionRead,
    UserCreate,
    UserLogin,
    UserRead,
)
from app.config import Settings
from app.errors import Forbidden, InvalidRequest
from app.http.ratelimit import RateLimiter
from app.infra.db import Database, RunAsync
from app.models import ApiKey, User
from app.models.base import utcnow

log = logging.getLogger(__name__)
MAX_API_KEYS = 100  # live keys per user


class AuthService:
    """Users, their tokens and keys; each change one `Database.write` unit (ADR 0018)."""

    def __init__(
        self, settings: Settings, database: Database, limiter: RateLimiter, passwords: Passwords
    ) -> None:
        self.settings = settings
        self.database = database
        self.limiter = limiter
        self.passwords = passwords

    # ---- sessions -----------------------------------------------------------------------

    async def register(self, body: UserCreate) -> SessionRead:
        """Create an account and sign it in; 409 when the email is taken."""
        return _session_read(self.settings, await self.create_user(body), image_count=0)

    async def create_user(self, body: UserCreate) -> User:
        """A new account; 409 when the email is taken, 429 when it is tried too often."""
        await self.limiter.require("auth", f"register:{body.email}")
        user = User(
            id=uuid.uuid4(),
            email=body.email,
            password_hash=await self.passwords.hash(body.password),
            storage_used=0,
            storage_quota=None,
            created_at=utcnow(),
        )
        try:
            await self.database.write(
                lambda connection, _: repository.insert_user(connection, user)
            )
        except IntegrityError as exc:
            raise EmailExists() from exc
        log.info("user registered", extra={"user_id": str(user.id)})
        return user

    async def login(self, body: UserLogin) -> SessionRead:
        """A token for the right email and password."""
        user = await self.check_password(body)
        async with self.database.reader() as session:
            image_count = await repository.count_images(session, user.id)
        return _session_read(self.settings, user, image_count)

    async def check_password(self, body: UserLogin) -> User:
        """The account these credentials open. Unknown emails and wrong passwords get the
        same answer after the same work; repeated failures lock the account.

        Each attempt is counted (one atomic increment, in Redis when there is one) before
        its password is checked, and a success clears the count: however many guesses
        arrive at once, across however many processes, at most LOGIN_MAX_FAILURES of
        them are checked per window (bench/login_drill.py shows it)."""
        account = f"account:{body.email}"
        await self.limiter.require("login_failure", account)
        async with self.database.reader() as session:
            user = await repository.get_user_by_email(session, body.email)
        valid = await self.passwords.verify(body.password, user.password_hash if user else None)
        if user is None or not valid:
            raise InvalidCredentials()  # its reserved attempt stays counted
        await self.limiter.reset("login_failure", account)
        return user

    async def signed_in(self, principal: Principal) -> User | None:
        """The caller's account row, for a page header (no usage figures to count)."""
        if principal.user_id is None:
            return None
        async with self.database.reader() as session:
            return await repository.get_user(session, principal.user_id)

    async def me(self, principal: Principal) -> UserRead:
        user_id = _required(principal)
        async with self.database.reader() as session:
            user = await repository.get_user(session, user_id)
            if user is None:
                raise Unauthorized("The account no longer exists")
            image_count = await repository.count_images(session, user_id)
            return _user_read(self.settings, user, image_count)

    # ---- web sessions -----------------------------------------------------------------

    async def start_web_session(self, user_id: uuid.UUID) -> tuple[str, int]:
        """A new signed-in browser: the cookie's secret and its lifetime in seconds."""
        secret, digest = tokens.new_session_secret()
        now = utcnow()
        lifetime = timedelta(days=self.settings.session_max_age_days)
        await self.database.write(
            lambda connection, _: repository.insert_web_session(
                connection, digest, user_id, now, now + lifetime
            )
        )
        return secret, int(lifetime.total_seconds())

    async def end_web_session(self, principal: Principal) -> None:
        """Sign the browser out: its cookie opens nothing from now on, anywhere."""
        if principal.session_id is not None:
            digest = principal.session_id
            await self.database.write(
                lambda connection, _: repository.delete_web_session(connection, digest)
            )

    # ---- API keys -----------------------------------------------------------------------

    async def create_api_key(self, principal: Principal, name: str) -> ApiKeyCreated:
        user_id = _key_manager(principal)
        secret, prefix, digest = tokens.new_api_key()
        key = _new_api_key(user_id, name, prefix, digest)

        def insert(connection: Connection, _: RunAsync) -> None:
            if repository.count_live_api_keys(connection, user_id) >= MAX_API_KEYS:
                raise InvalidRequest(f"At most {MAX_API_KEYS} API keys; revoke one first")
            repository.insert_api_key(connection, key)

        await self.database.write(insert)
        log.info("api key created", extra={"user_id": str(user_id), "key_id": str(key.id)})
        return ApiKeyCreated(
            id=key.id, name=name, prefix=prefix, key=secret, created_at=key.created_at
        )

    async def list_api_keys(self, principal: Principal) -> ApiKeyList:
        async with self.database.reader() as session:
            keys = await repository.list_api_keys(session, _required(principal))
        return ApiKeyList(items=[ApiKeyRead.model_validate(k, from_attributes=True) for k in keys])

    async def revoke_api_key(self, principal: Principal, key_id: uuid.UUID) -> None:
        """Revoke one of the caller's keys; another user's key id is simply not found."""
        user_id = _key_manager(principal)
        now = utcnow()
        revoked = await self.database.write(
            lambda connection, _: repository.revoke_api_key(connection, key_id, user_id, now)
        )
        if not revoked:
            raise ApiKeyNotFound()
        log.info("api key revoked", extra={"user_id": str(user_id), "key_id": str(key_id)})

    # ---- who is calling -----------------------------------------------------------------

    async def authenticate(self, credentials: Credentials) -> Principal:
        """The caller these credentials name. Credentials that are present but bad raise
        401: they never downgrade a caller to anonymous. An ended web session does (the
        page then signs the browser out)."""
        match credentials.presented:
            case BearerToken(token):
                return await self._bearer(token)
            case ApiKeySecret(key):
                return await self._api_key(key)
            case SessionSecret(secret):
                found = await self._web_session(secret)
                if found is not None:
                    return found
        return Principal.anonymous(credentials.address)

    async def _web_session(self, secret: str) -> Principal | None:
        """The browser's session, or None when it has ended (the page signs it out)."""
        digest = tokens.digest(secret)
        async with self.database.reader() as session:
            user_id = await repository.session_user(session, digest, utcnow())
        return None if user_id is None else Principal.web_session(user_id, digest)

    async def _bearer(self, token: str) -> Principal:
        user_id = tokens.token_subject(self.settings, token)
        async with self.database.reader() as session:
            if not await repository.user_exists(session, user_id):
                raise Unauthorized("The account no longer exists")
        return Principal.user(user_id)

    async def _api_key(self, key: str) -> Principal:
        if not tokens.looks_like_api_key(key):
            raise Unauthorized("The API key is not valid")
        async with self.database.reader() as session:
            found = await repository.find_api_key(session, tokens.digest(key))
        if found is None:
            raise Unauthorized("The API key is not valid or has been revoked")
        key_id, user_id, last_used_at = found
        now = utcnow()
        if last_used_at is None or now - last_used_at >= repository.LAST_USED_RESOLUTION:
            await self.database.write(
                lambda connection, _: repository.touch_api_key(connection, key_id, now)
            )
        return Principal.api_key(user_id, key_id)


def _session_read(settings: Settings, user: User, image_count: int) -> SessionRead:
    """The signed-in answer: the account and a fresh bearer token for it."""
    issued = tokens.issue_token(settings, user.id)
    return SessionRead(
        user=_user_read(settings, user, image_count),
        access_token=issued.access_token,
        expires_in=issued.expires_in,
    )


def _user_read(settings: Settings, user: User, image_count: int) -> UserRead:
    quota = user.storage_quota
    return UserRead(
        id=user.id,
        email=user.email,
        created_at=user.created_at,
        image_count=image_count,
        storage_used=user.storage_used,
        storage_quota=settings.default_quota_bytes if quota is None else quota,
    )


def _new_api_key(user_id: uuid.UUID, name: str, prefix: str, digest: str) -> ApiKey:
    """A live key row; only the secret's digest is stored."""
    return ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=digest,
        created_at=utcnow(),
        last_used_at=None,
        revoked_at=None,
    )


def _required(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise Unauthorized()
    return principal.user_id


def _key_manager(principal: Principal) -> uuid.UUID:
    """The user who may create or revoke API keys: signed in with a token, not a key (a
    leaked key must not mint or revoke others; key scopes will refine this)."""
    user_id = _required(principal)
    if principal.api_key_id is not None:
        raise Forbidden(
            "An API key cannot create or revoke API keys: sign in and use a bearer token"
        )
    return user_id
