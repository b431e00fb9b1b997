"""Dependencies shared by the routes: the store, the settings and the two kinds of credential."""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request

from collector.limits import read_json_body
from pystrument_lab.errors import AuthenticationError, InvalidProjectKey, PermissionDenied
from pystrument_lab.settings import Settings
from pystrument_lab.store import Store

PROJECT_CACHE_SECONDS = 5.0
#: A body that names its project key inside (no ``X-Project-Key`` header) is
#: read before its sender is known, so it may be at most this large.
ANONYMOUS_BODY_LIMIT = 256 * 1024

logger = logging.getLogger("collector")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    """The store, with its indexes created on first use (the collector may start before it)."""
    store: Store = request.app.state.store
    store.ensure_indexes()
    return store


def get_read_store(request: Request) -> Store:
    """The store handle of reads: its own connection pool, so listings and
    trends never hold a connection that ingest is waiting for."""
    get_store(request)
    store: Store = request.app.state.read_store
    return store


T = TypeVar("T")

#: Threads that ingest (records, metrics) may use: a pool of its own, so reads
#: filling the shared thread pool never make ingest wait for a thread.
INGEST_THREADS = 16


async def run_ingest_thread(request: Request, function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a worker thread of the ingest limiter."""
    limiter = getattr(request.app.state, "ingest_limiter", None)
    if limiter is None:
        limiter = request.app.state.ingest_limiter = anyio.CapacityLimiter(INGEST_THREADS)
    return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=limiter)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ReadStoreDep = Annotated[Store, Depends(get_read_store)]


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-admin-token") or None


def require_admin(request: Request) -> None:
    """Management endpoints: the admin token as ``Authorization: Bearer`` or ``X-Admin-Token``."""
    expected: str = request.app.state.admin_token
    token = _presented_token(request)
    if token is None:
        if request.headers.get("x-project-key"):
            raise PermissionDenied(
                "a project key may only send data; this endpoint needs the admin token"
            )
        raise AuthenticationError(
            "missing credentials: send the admin token as 'Authorization: Bearer <token>' "
            "(see 'pystrument admin-token')"
        )
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationError("the admin token is not valid")


AdminDep = Depends(require_admin)


class ProjectCache:
    """Short-lived cache of project documents so ingest does not read the project every call."""

    def __init__(self, ttl: float = PROJECT_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def get(self, store: Store, key: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        project = store.find_project(key)
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (now, project)
        return project

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class UnknownKeyNotes:
    """Tell the store about unknown project keys, once a minute per key and process at most.

    ``pystrument doctor`` reads them to say "an SDK sends a wrong key".
    """

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._noted: dict[str, float] = {}
        self._lock = threading.Lock()

    def note(self, store: Store, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._noted.get(key, -self.interval) < self.interval:
                return
            if len(self._noted) > 10_000:
                self._noted.clear()
            self._noted[key] = now
        try:
            store.note_unknown_key(key)
        except Exception:  # a diagnosis aid must not change the answer
            logger.warning("could not note an unknown project key", exc_info=True)


def sdk_project(
    request: Request, store: Store, body_key: str | None = None, *, for_ingest: bool = True
) -> dict[str, Any]:
    """The project an SDK request speaks for, from ``X-Project-Key`` or the body.

    Unknown keys get 20003; an inactive or archived project may not send data.
    The per-project rate limit applies here.
    """
    key = request.headers.get("x-project-key") or body_key
    if not key:
        raise AuthenticationError("missing project key: send it in the X-Project-Key header")
    project: dict[str, Any] | None = request.app.state.project_cache.get(store, key)
    if project is None:
        request.app.state.unknown_keys.note(store, key)
        raise InvalidProjectKey(
            "the project key is not known; check PROJECT_KEY in the SDK configuration"
        )
    if for_ingest and project.get("status") != "active":
        raise InvalidProjectKey(
            f"project {project['name']!r} is {project.get('status')}; it does not accept data",
            status=403,
        )
    request.app.state.rate_limiter.check(store, key)
    return project


async def authenticated_payload(
    request: Request, store: Store, limit: int
) -> tuple[dict[str, Any], Any]:
    """(project, parsed body) of an SDK request, the sender authenticated before the body is read.

    With ``X-Project-Key`` the key is checked first and the body may use the
    whole ``limit``; a body that carries its own key is read under
    :data:`ANONYMOUS_BODY_LIMIT`, so an unknown sender costs little.
    """
    if request.headers.get("x-project-key"):
        project = await run_ingest_thread(request, sdk_project, request, store)
        return project, await read_json_body(request, limit)
    from collector.ingest import body_key

    payload = await read_json_body(request, min(limit, ANONYMOUS_BODY_LIMIT))
    project = await run_ingest_thread(request, sdk_project, request, store, body_key(payload))
    return project, payload
