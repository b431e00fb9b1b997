"""Assemble the collector: settings, store, middleware, routers, handlers.

Run with ``uvicorn collector.app:app`` or ``pystrument collector``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from collector.api.links import install_links
from collector.api.routes import analysis, health, performance, projects, sdk
from collector.deps import ProjectCache, UnknownKeyNotes
from collector.envelope import ERROR_RESPONSES, install_exception_handlers
from collector.limits import BodySizeLimit, RateLimiter
from collector.log_redaction import install_access_log_redaction
from pystrument_lab import __version__
from pystrument_lab.errors import StoreUnavailable
from pystrument_lab.settings import Settings, admin_token, get_settings
from pystrument_lab.store import Store, StoreError, resolve_url

logger = logging.getLogger("collector")


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is None:
            app.state.store = Store(
                resolve_url(settings),
                database=settings.database,
                timeout_ms=settings.store_timeout_ms,
                deadline_ms=settings.store_deadline_ms,
            )
        app.state.read_store = app.state.store.reader(settings.store_read_pool)
        try:
            app.state.store.ensure_indexes()
        except (StoreUnavailable, StoreError):
            logger.warning("store not reachable at start-up; retrying on each request")
        yield
        if store is None:
            app.state.store.close()

    app = FastAPI(
        title="Pystrument collector",
        version=__version__,
        description="Receives SDK data, manages projects, serves records and trends.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.admin_token = admin_token(settings)
    app.state.project_cache = ProjectCache()
    app.state.unknown_keys = UnknownKeyNotes()
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)

    install_exception_handlers(app)
    install_access_log_redaction()
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodySizeLimit, limit=settings.max_request_size)

    for router in (health.router, projects.router, performance.router, sdk.router, analysis.router):
        app.include_router(router)
    install_links(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # ``collector.app:app`` builds the app on first access, not at import time.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
