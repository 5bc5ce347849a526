"""The application factory: routers, middleware and error handlers."""

from __future__ import annotations

from fastapi import FastAPI

from app import __version__
from app.albums.router import router as albums_router
from app.auth.middleware import AuthMiddleware
from app.auth.router import router as auth_router
from app.config import Settings, load_settings
from app.http import health
from app.http.handlers import install_error_handlers
from app.http.lifespan import lifespan_for
from app.http.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.http.openapi import install_docs, install_openapi
from app.http.ratelimit import RateLimitMiddleware
from app.images.library_router import router as library_router
from app.images.router import router as images_router
from app.infra import tracing
from app.infra.logging import configure_logging
from app.storage import Storage
from app.web.errors import error_page
from app.web.router import router as web_router


def create_app(settings: Settings, *, storage: Storage | None = None) -> FastAPI:
    """Wire one app from `settings` (and a ready storage backend, if given)."""
    app = FastAPI(
        title="Chitram",
        version=__version__,
        summary="Self-hostable image hosting",
        lifespan=lifespan_for(settings, storage),
        docs_url=None,  # served from vendored files: app.http.openapi.install_docs
        redoc_url=None,
    )
    app.include_router(images_router)  # first: routes are tried in order, reads are hot
    app.include_router(library_router)
    app.include_router(auth_router)
    app.include_router(albums_router)
    app.include_router(health.router)
    app.include_router(web_router)
    install_docs(app)
    install_openapi(app, settings)
    install_error_handlers(app, error_page=error_page)
    app.add_middleware(RateLimitMiddleware, settings=settings)  # counts the resolved caller
    app.add_middleware(AuthMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware)
    # Outermost of ours: even a 429 carries the request id, and every answer is counted.
    app.add_middleware(RequestIdMiddleware, settings=settings)
    tracing.instrument_app(app)  # outside everything: the request's server span
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for uvicorn's `--factory`: settings from the environment."""
    settings = load_settings()  # a SettingsError names bad settings, never their values
    configure_logging(settings.log_format, settings.log_level)
    tracing.setup(settings, "chitram-api")
    return create_app(settings)
