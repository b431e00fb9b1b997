"""Serving the demo: both app versions behind one loopback port, in a background thread.

A request picks its version with the ``X-Demo-Version`` header (default: the
newest). Paths under ``/downstream/`` go to a slow "recommendation engine"
that is not instrumented: it stands for a service the shop depends on.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI
from performance_monitor.fastapi import PerformanceMiddleware

from pystrument_lab.demo.app import (
    DOWNSTREAM_DELAY,
    VERSION_HEADER,
    VERSIONS,
    Shop,
    create_instrumented_app,
)
from pystrument_lab.demo.shopdb import PRODUCT_COUNT, create_shop_database
from pystrument_lab.errors import PystrumentError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_downstream_app() -> FastAPI:
    """The slow dependency: answers after :data:`DOWNSTREAM_DELAY` seconds."""
    app = FastAPI(title="recommendation-engine")

    @app.get("/downstream/recommendations/{user_id}")
    async def recommend(user_id: int) -> dict[str, Any]:
        await asyncio.sleep(DOWNSTREAM_DELAY)
        return {"product_ids": [1 + (user_id * k) % PRODUCT_COUNT for k in range(1, 6)]}

    return app


class VersionRouter:
    """ASGI app choosing the shop version from the request header."""

    def __init__(self, apps: dict[str, ASGIApp], downstream: ASGIApp, shops: list[Shop]) -> None:
        self.apps = apps
        self.default = max(apps)
        self.downstream = downstream
        self.shops = shops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope.get("path", "").startswith("/downstream/"):
            await self.downstream(scope, receive, send)
            return
        await self.apps[self._version(scope)](scope, receive, send)

    def _version(self, scope: Scope) -> str:
        for name, value in scope.get("headers", ()):
            if name == VERSION_HEADER.encode():
                version = value.decode("latin-1")
                return version if version in self.apps else self.default
        return self.default

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Built here, not on the first request: building a client loads
                # the TLS context (0.2-0.4 s of CPU), which would make the first
                # call of the planted I/O endpoint read as computation.
                for shop in self.shops:
                    shop.client()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for shop in self.shops:
                    if shop._client is not None:
                        await shop._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class DemoServer:
    """Both versions of the shop on ``127.0.0.1:port``, sending to the collector.

    Use as a context manager: on exit the server stops, the SDK monitors are
    flushed and closed, and the temporary database is removed.
    """

    def __init__(self, *, project_key: str, api_endpoint: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="pystrument-demo-")
        self.engine = create_shop_database(Path(self._tmp.name) / "shop.sqlite")
        self.shops = [Shop(self.engine, version, self.url) for version in VERSIONS]
        self.middlewares: dict[str, PerformanceMiddleware] = {
            shop.version: create_instrumented_app(
                shop, project_key=project_key, api_endpoint=api_endpoint
            )
            for shop in self.shops
        }
        router = VersionRouter(dict(self.middlewares), create_downstream_app(), self.shops)
        config = uvicorn.Config(
            router, host="127.0.0.1", port=port, log_level="warning", access_log=False,
            loop="asyncio", lifespan="on",
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="demo-shop", daemon=True)

    def start(self, timeout: float = 15.0) -> DemoServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.05)
        if not self._server.started:
            self.stop()
            raise PystrumentError(f"the demo shop could not start on port {self.port}")
        return self

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything the SDK holds for both versions; True when done in time."""
        return all([middleware.monitor.flush(timeout) for middleware in self.middlewares.values()])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        for middleware in self.middlewares.values():
            middleware.monitor.close(timeout=5.0)
        self.engine.dispose()
        self._tmp.cleanup()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
