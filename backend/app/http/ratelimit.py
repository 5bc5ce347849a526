"""Rate limits with the `limits` library: Redis across processes, memory as the fallback.

Fixed windows (`limits`' fixed-window strategy: one INCR with expiry per request, the
cheapest there is), keyed by the caller `app.auth.middleware` resolved: the user for any
of their tokens and API keys, the client IP otherwise (`X-Forwarded-For` only from
`TRUSTED_PROXIES`); the auth routes always by client IP, whatever credentials ride
along. With `REDIS_URL` the counters live in Redis, so a limit holds across every API
process; when Redis does not answer within its client's socket timeout (0.25 s, set
by `app.wiring`), this process counts in memory instead (per process, so limits loosen
by the number of processes but never disappear), logs it once, and tries Redis again
after `app.infra.breaker.RETRY_AFTER` seconds.

`RateLimitMiddleware` applies them before routing, so a refused request costs no
dependency resolution, and adds the IETF `RateLimit-*` headers to every limited route.
The accounts service uses the same limiter for failed logins per account, and a batch
upload charges one more upload per extra file (`charge_extra_file`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import RateLimited
from app.http import routes
from app.http.handlers import render
from app.http.net import client_address
from app.infra.breaker import Breaker
from app.infra.metrics import LIMITER_FALLBACK, RATE_LIMITED

if TYPE_CHECKING:
    from app.auth.principal import Principal

log = logging.getLogger(__name__)
REDIS_TIMEOUT = 0.25
MAX_REMEMBERED_WINDOWS = 100_000
LOGIN_FAILURE_WINDOW = "15 minutes"

LimitName = Literal["upload", "read", "auth", "login_failure"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window resets

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_after).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(max(1, self.reset_after)).encode()))
        return headers


class RateLimiter:
    """Counts hits per (limit, caller) in Redis, or in memory while Redis is away."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        """Counts in `redis` (sharing its connection pool, whose socket timeouts bound
        every call) when given, else in this process alone."""
        self.items: dict[LimitName, RateLimitItem] = {
            "upload": parse(settings.rate_limit_upload),
            "read": parse(settings.rate_limit_read),
            "auth": parse(settings.rate_limit_auth),
            "login_failure": parse(f"{settings.login_max_failures}/{LOGIN_FAILURE_WINDOW}"),
        }
        self.settings = settings
        self.enabled = settings.rate_limit_enabled
        self.memory = MemoryStorage()
        self.redis: Storage | None = None
        self.pool: ConnectionPool | None = None
        if redis is not None:
            self.pool = redis.connection_pool
            self.redis = RedisStorage(
                # The URL only picks the implementation: connections come from the pool.
                f"async+{settings.redis_url}",
                implementation="redispy",
                key_prefix=f"{settings.redis_prefix}:ratelimit",
                connection_pool=self.pool,  # type: ignore[arg-type]
            )
        self._breaker = Breaker("rate limits fall back to this process", LIMITER_FALLBACK)
        # When each window ends, as learnt from its first hit: one round trip per request.
        self._resets: dict[str, float] = {}

    def _remember(self, key: str, reset_at: float, now: float) -> None:
        self._resets[key] = reset_at
        if len(self._resets) > MAX_REMEMBERED_WINDOWS:
            self._resets = {k: t for k, t in self._resets.items() if t > now}

    async def _on_storage(self, action: Callable[[Storage], Awaitable[T]]) -> T:
        """`action` on Redis while it answers, else on this process's memory."""
        if self.redis is not None and not self._breaker.open:
            try:
                # Bounded by the pool's socket timeouts; no wait_for: a task per request
                # would cost more than the round trip.
                result = await action(self.redis)
            except (RedisError, OSError, TimeoutError) as exc:
                self._breaker.trip(exc)
            else:
                self._breaker.succeeded()
                return result
        return await action(self.memory)

    async def hit(self, name: LimitName, caller: str) -> Quota:
        """Count one request of `caller` against the limit `name`."""
        item = self.items[name]
        key = item.key_for(name, caller)
        return await self._on_storage(lambda storage: self._count(storage, item, key))

    async def require(self, name: LimitName, caller: str) -> None:
        """Count one request; raise RateLimited when it is over the limit."""
        if self.enabled:
            quota = await self.hit(name, caller)
            if not quota.allowed:
                raise self.refusal(name, quota)

    async def charge_extra_file(self, scope: Scope) -> None:
        """Count one more upload for a batch's second and later files (the middleware
        counted the request, its first); raise RateLimited when the budget is spent."""
        await self.require("upload", caller_key(scope, "upload", self.settings))

    async def reset(self, name: LimitName, caller: str) -> None:
        """Forget `caller`'s count (a successful login clears its failures)."""
        key = self.items[name].key_for(name, caller)
        await self._on_storage(lambda storage: storage.clear(key))

    @staticmethod
    def refusal(name: LimitName, quota: Quota) -> RateLimited:
        RATE_LIMITED.labels(limit=name).inc()
        return RateLimited(headers={k.decode(): v.decode() for k, v in quota.headers()})

    async def _count(self, storage: Storage, item: RateLimitItem, key: str) -> Quota:
        # limits' FixedWindowRateLimiter.hit is exactly `incr(...) <= amount`; calling the
        # storage directly also gives the count, saving a round trip for the headers.
        count = await storage.incr(key, item.get_expiry())
        now = time.time()
        reset_at = self._resets.get(key)
        if count == 1:
            reset_at = now + item.get_expiry()  # this hit opened the window
        elif reset_at is None or reset_at <= now:
            reset_at = await storage.get_expiry(key)  # opened elsewhere: ask once
        self._remember(key, reset_at, now)
        return Quota(
            allowed=count <= item.amount,
            limit=item.amount,
            remaining=max(0, item.amount - count),
            reset_after=max(0, math.ceil(reset_at - time.time())),
        )

    async def ping(self) -> None:
        if self.redis is not None:
            await asyncio.wait_for(self.redis.check(), REDIS_TIMEOUT)


LIMITED_WRITES: dict[tuple[str, str], LimitName] = {
    ("POST", routes.IMAGES_UPLOAD): "upload",
    ("POST", routes.IMAGES_BATCH): "upload",
    ("POST", routes.PAGE_UPLOAD): "upload",
    ("POST", routes.AUTH_LOGIN): "auth",
    ("POST", routes.AUTH_REGISTER): "auth",
    ("POST", routes.AUTH_TOKEN): "auth",
    ("POST", routes.PAGE_LOGIN): "auth",
    ("POST", routes.PAGE_REGISTER): "auth",
}
# Pages that read images count as the API reads they stand for (contract section 7).
LIMITED_READS = (
    routes.IMAGES,
    routes.IMAGE_PAGES,
    routes.PAGE_GALLERY,
    routes.PAGE_ALBUMS,
    routes.ALBUM_PAGES,
)


# Album changes are small metadata writes, reads' siblings: every method spends reads.
LIMITED_ANY_METHOD = (routes.ALBUMS,)


def classify(method: str, path: str) -> LimitName | None:
    """Which limit a request counts against, from its method and path alone."""
    if path.startswith(LIMITED_ANY_METHOD):
        return "read"
    if method in ("GET", "HEAD"):
        return "read" if path.startswith(LIMITED_READS) else None
    return LIMITED_WRITES.get((method, path))


def caller_key(scope: Scope, name: LimitName, settings: Settings) -> str:
    """Whose budget a request spends, from the caller `app.auth.middleware` (which runs
    first) resolved: the client address on the auth routes, whatever credentials ride
    along (an API key must not buy a login a fresh budget); the user for every token and
    API key of theirs; the address for anonymous callers."""
    if name == "auth":
        return "ip:" + client_address(scope, settings)
    principal: Principal = scope["state"]["principal"]
    if principal.api_key_id is not None:
        return f"user:{principal.user_id}"
    return principal.scope


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = (
            classify(scope["method"], scope["path"])
            if scope["type"] == "http" and self.settings.rate_limit_enabled
            else None
        )
        state = scope.get("state") or {}
        resources = state.get("resources")
        if name is None or resources is None:
            await self.app(scope, receive, send)
            return
        quota = await resources.limiter.hit(name, caller_key(scope, name, self.settings))
        headers = quota.headers()
        if not quota.allowed:
            # The contract's envelope, as every other error; the request-id middleware,
            # outside this one, adds X-Request-ID.
            refusal = resources.limiter.refusal(name, quota)
            await render(Request(scope), refusal)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = message.get("headers", [])
                # A route's own refusal (failed logins of an account) is the limit that
                # matters to the client: it keeps its headers, not two sets.
                if not any(name == b"ratelimit-limit" for name, _ in present):
                    message["headers"] = [*present, *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
