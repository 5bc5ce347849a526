"""Settings: the only reader of the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The development default: public, refused outside development, and long enough (32+
# bytes) for HS256, so that PyJWT has nothing to warn about while developing.
DEFAULT_JWT_SECRET = "change-me-development-only-secret"  # noqa: S105
# RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
MIN_JWT_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
ALL_FORMATS = ("jpeg", "png", "webp", "gif")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """Settings that cannot be used. The message names each bad setting and what is
    wrong with it, and never quotes a value: values may be secrets."""


class Settings(BaseSettings):
    """Configuration from the environment and `.env`, as contract section 7 lists it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./data")
    # Fields that may carry a secret (a URL's password) are left out of repr(settings).
    database_url: str | None = Field(default=None, repr=False)
    # PostgreSQL streaming replicas for metadata reads and listings (comma-separated);
    # needs REDIS_URL, where writers leave the read-your-writes markers (app.infra.replicas).
    database_read_urls: Annotated[tuple[str, ...], NoDecode] = Field(default=(), repr=False)
    # A replica further behind than this takes no reads until it catches up.
    replica_max_lag_seconds: float = Field(default=10.0, gt=0)
    redis_url: str | None = Field(default=None, repr=False)

    storage_backend: Literal["local", "s3", "memory"] = "local"
    s3_endpoint_url: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str = "chitram"
    s3_region: str = "us-east-1"

    max_upload_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    max_image_side: int = Field(default=30_000, gt=0)
    max_frames: int = Field(default=10_000, gt=0)
    max_batch_files: int = Field(default=20, gt=0)
    # Back-pressure per API process: uploads at once, and bytes they may bring in.
    max_concurrent_uploads: int = Field(default=64, gt=0)
    max_ingest_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # Of those uploads, how many one client address may hold at once (ADR 0016).
    max_uploads_per_client: int = Field(default=8, gt=0)
    # A body must average this rate from its start once the grace period is over, or it
    # is answered 408 (0: no floor). Bounds how long a trickling body holds its slot.
    upload_min_bytes_per_second: int = Field(default=8 * 1024, ge=0)
    upload_grace_seconds: float = Field(default=10.0, ge=0)
    allowed_formats: Annotated[tuple[str, ...], NoDecode] = ALL_FORMATS
    strip_metadata: bool = True
    allow_anonymous_uploads: bool = True
    # Anonymous uploads live at most this long (unset: no limit; asking for more is a
    # 422), and this long when they name no expiry (unset: for ever).
    anon_max_expires_seconds: int | None = Field(default=None, ge=1)
    anon_default_expires_seconds: int | None = Field(default=None, ge=1)
    # How often expired images are deleted (they answer 404 from their expiry on).
    expiry_sweep_interval_seconds: float = Field(default=30.0, gt=0, le=3600)

    # Per caller, in the `limits` library's notation; counted in Redis when configured.
    rate_limit_enabled: bool = True
    rate_limit_upload: str = "60/minute"
    rate_limit_read: str = "1200/minute"
    rate_limit_auth: str = "20/minute"

    jwt_secret: str = Field(default=DEFAULT_JWT_SECRET, repr=False)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_expire_minutes: float = Field(default=60, gt=0)
    # Failed logins per account in a 15-minute window before the account answers 429.
    login_max_failures: int = Field(default=5, ge=1)
    # How long a browser stays signed in to the web UI.
    session_max_age_days: float = Field(default=14, gt=0)
    # Each user's storage quota unless their row says otherwise (1 GiB).
    default_quota_bytes: int = Field(default=1024**3, ge=0)

    public_base_url: str | None = None
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    # Client addresses in logs: "truncated" keeps the network (/24, /48), which is enough
    # to spot abuse without keeping personal data; "full" or "none" on purpose only.
    log_client_ip: Literal["truncated", "full", "none"] = "truncated"
    # Traces go to this OTLP/HTTP collector (e.g. http://jaeger:4318); unset: no tracing.
    otel_exporter_otlp_endpoint: str | None = None

    # How many processes serve this database; `chitram serve --workers` sets it. A cache
    # inside one process is only correct while it is the only one.
    web_processes: int = Field(default=1, ge=1)
    metadata_cache_ttl_seconds: float = 60.0
    idempotency_ttl_seconds: int = 24 * 3600
    reconcile_grace_seconds: int = 3600
    small_file_bytes: int = 512 * 1024

    # Every Redis key of this deployment (cache, rate limits) starts with this, and so
    # does its arq queue for thumbnail jobs (see app/jobs) unless QUEUE_NAME says otherwise.
    redis_prefix: str = "chitram"
    queue_name: str = ""  # default: "<REDIS_PREFIX>:thumbnails"
    thumbnail_max_attempts: int = Field(default=3, ge=1)
    thumbnail_retry_base_seconds: float = Field(default=5.0, ge=0)
    thumbnail_sweep_interval_seconds: int = Field(default=30, ge=1, le=3600)
    # A pending row quiet for this long is dispatched again by the sweeper.
    thumbnail_stale_seconds: float = Field(default=120.0, ge=0)
    thumbnail_job_timeout_seconds: int = Field(default=60, ge=1)
    # Automatic tags (contract section 11): a job after the thumbnails, on the same
    # queue with the same attempts, backoff and sweeper. `basic` reads the pixels;
    # `openai` asks an OpenAI-compatible chat-completions endpoint at TAGGER_URL.
    tagger: Literal["basic", "openai", "none"] = "basic"
    tagger_url: str | None = Field(default=None, repr=False)  # may carry a password
    tagger_model: str = ""
    tagger_api_key: SecretStr | None = None
    tagger_max_tags: int = Field(default=5, ge=1, le=50)
    tagger_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    object_cache_bytes: int = 64 * 1024 * 1024
    # Processes per API or worker process that decode images and render thumbnails
    # (app.infra.cpu); unset: one per core.
    cpu_workers: int | None = Field(default=None, ge=1)

    @field_validator("allowed_formats", mode="before")
    @classmethod
    def _split_formats(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        formats: tuple[str, ...] = tuple(value)  # type: ignore[arg-type]
        unknown = sorted(set(formats) - set(ALL_FORMATS))
        if unknown:
            raise ValueError(f"unsupported formats {unknown}; choose from {list(ALL_FORMATS)}")
        return formats

    @field_validator("database_read_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return tuple(ipaddress.ip_network(str(part), strict=False) for part in value)  # type: ignore[attr-defined]

    @field_validator("rate_limit_upload", "rate_limit_read", "rate_limit_auth")
    @classmethod
    def _parse_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError on anything the limits library cannot read
        return value

    @field_validator("tagger_url")
    @classmethod
    def _strip_tagger_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _derive_queue_name(self) -> Settings:
        if not self.queue_name:
            self.queue_name = f"{self.redis_prefix}:thumbnails"
        return self

    @model_validator(mode="after")
    def _default_expiry_within_cap(self) -> Settings:
        cap, default = self.anon_max_expires_seconds, self.anon_default_expires_seconds
        if cap is not None and default is not None and default > cap:
            raise ValueError("ANON_DEFAULT_EXPIRES_SECONDS exceeds ANON_MAX_EXPIRES_SECONDS")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "development":
            if self.jwt_secret in ("", DEFAULT_JWT_SECRET):
                raise ValueError(
                    "JWT_SECRET must be set to a non-default value outside development"
                )
            minimum = MIN_JWT_SECRET_BYTES[self.jwt_algorithm]
            if len(self.jwt_secret.encode()) < minimum:
                raise ValueError(
                    f"JWT_SECRET must be at least {minimum} bytes for {self.jwt_algorithm} "
                    "outside development (RFC 7518 section 3.2)"
                )
        if self.database_read_urls and not (
            self.redis_url and self.resolved_database_url.startswith("postgresql")
        ):
            raise ValueError(
                "DATABASE_READ_URLS needs a PostgreSQL DATABASE_URL and REDIS_URL "
                "(where read-your-writes markers are kept)"
            )
        if self.tagger == "openai" and not (self.tagger_url and self.tagger_model):
            raise ValueError("TAGGER=openai needs TAGGER_URL and TAGGER_MODEL")
        if self.max_ingest_bytes < self.max_upload_bytes:
            raise ValueError("MAX_INGEST_BYTES must be at least MAX_UPLOAD_BYTES")
        if self.storage_backend == "s3" and not (
            self.s3_endpoint_url and self.s3_access_key and self.s3_secret_key
        ):
            raise ValueError(
                "STORAGE_BACKEND=s3 needs S3_ENDPOINT_URL, S3_ACCESS_KEY, S3_SECRET_KEY"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'chitram.db').resolve()}"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"


def load_settings() -> Settings:
    """Settings from the environment, or a SettingsError fit for a console or a log.

    pydantic's own message quotes the input (for a whole-model check, every setting,
    JWT_SECRET and URLs with passwords included), so it never leaves this function."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_settings_errors(exc)) from None


def describe_settings_errors(exc: ValidationError) -> str:
    """One line per problem, by environment variable name, without the values."""
    lines = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        head, *rest = error["loc"] or ("",)
        name = str(head).upper() + "".join(f"[{part}]" for part in rest)
        lines.append(f"  {name}: {error['msg']}" if name else f"  {error['msg']}")
    return "invalid settings:\n" + "\n".join(lines)
