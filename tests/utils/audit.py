"""Shared helpers of the reliability and security tests: run mode, envelopes, the route table.

``PYSTRUMENT_LONG_TESTS=1`` turns on the long mode (more generated cases,
longer runs); the short mode is what ``make test`` runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from pystrument_lab.errors import HTTP_STATUS, ErrorCode
from pystrument_lab.store import Store
from tests.utils.services import CollectorProcess

T = TypeVar("T")

LONG = os.environ.get("PYSTRUMENT_LONG_TESTS", "").strip().lower() not in ("", "0", "false", "no")

#: Routes anyone may call: the service check and the API documentation.
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})

DOCUMENTED_CODES = frozenset(int(code) for code in ErrorCode)


def scaled(short: T, long: T) -> T:
    """``long`` in the long mode, else ``short``."""
    return long if LONG else short


def offline_app() -> FastAPI:
    """The collector app object, built without a store, to read its route table and schema."""
    from collector.app import create_app
    from pystrument_lab.settings import Settings

    settings = Settings(
        **{  # type: ignore[arg-type]  # the settings take their environment names
            "PYSTRUMENT_ADMIN_TOKEN": "route-table-only",
            "PYSTRUMENT_MONGODB_URL": "mongodb://127.0.0.1:9",
        }
    )
    return create_app(settings)


def all_routes(app: FastAPI | None = None) -> list[tuple[str, str]]:
    """Every (path template, HTTP method) the app answers, documentation routes included.

    Newer FastAPI versions keep included routers as nested route objects
    (``effective_route_contexts``); older ones flatten them into ``app.routes``.
    """
    app = app or offline_app()
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            pairs = [(ctx.path, ctx.original_route) for ctx in contexts()]
        else:
            pairs = [(getattr(route, "path", ""), route)]
        for path, original in pairs:
            for method in getattr(original, "methods", None) or ():
                if method != "HEAD":
                    found.add((path, method))
    return sorted(found)


def api_operations(app: FastAPI | None = None) -> list[tuple[str, str]]:
    """The routes of the API proper: everything but the documentation pages and schema."""
    return [op for op in all_routes(app) if op[0] not in PUBLIC_PATHS - {"/health"}]


#: A 5xx is a bug unless it is one of these documented "service unavailable" answers.
UNAVAILABLE_CODES = frozenset({int(ErrorCode.AI_SERVICE_UNAVAILABLE)})


def assert_envelope(
    response: httpx.Response | Any, *, unavailable: frozenset[int] = UNAVAILABLE_CODES
) -> dict[str, Any]:
    """The response is ``{"code", "msg", "data"}`` with a documented code; returns the body.

    A 5xx passes only with a code in ``unavailable`` and that code's documented status
    (an AI provider that is not configured is a 503 by SPEC §2, not a crash).
    """
    status = response.status_code
    text = response.text
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "msg", "data"}, text[:500]
    assert body["code"] in DOCUMENTED_CODES, body
    if status >= 500:
        assert body["code"] in unavailable, f"{status}: {text[:500]}"
        assert status == HTTP_STATUS[ErrorCode(body["code"])], f"{status}: {text[:500]}"
    assert isinstance(body["msg"], str) and body["msg"], body
    assert (body["code"] == 0) == (200 <= status < 300), (status, body)
    return body


@contextmanager
def running_collector(mongo_url: str, home: Path, **env: str) -> Iterator[CollectorProcess]:
    """A collector on a database of its own, dropped afterwards (for module-scoped fixtures)."""
    database = "test_" + uuid.uuid4().hex[:12]
    home.mkdir(parents=True, exist_ok=True)
    store = Store(mongo_url, database=database)
    store.ensure_indexes()
    process = CollectorProcess(mongo_url, database, home, **env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        store.client.drop_database(database)
        store.close()


def new_project(collector: CollectorProcess, prefix: str = "audit", **body: Any) -> dict[str, Any]:
    return collector.create_project(f"{prefix}-{uuid.uuid4().hex[:8]}", **body)
