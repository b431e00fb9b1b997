"""Django SQL, cache and template timing for sampled requests.

SQL uses ``connection.execute_wrapper`` around the request; a statement's
time includes fetching its rows (the cursor wrapper's DB-API cursor is
wrapped, see ``core/rows.py``). Django has no
cache or template signals outside tests, so the cache backends' ``get``/
``set`` (and ``get_many`` where a backend defines its own) and
``Template.render`` are wrapped once; the wrappers return straight to the
original when the current request is not sampled.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from ..core.profiler import add_thread_time, profiled_in_thread, timed_in_thread
from ..core.request import current_request
from ..core.rows import timed_rows
from ..utils.logger import capture_internal_exceptions, internal_error

_MISSING = object()
_PATCHED = "_performance_monitor_patched"


def _sql_wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    state = current_request()
    if state is None:
        return execute(sql, params, many, context)
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        try:
            execution = state.add_query(sql, time.perf_counter() - start)
            wrapper = context.get("cursor")
            if wrapper is not None and not many:
                # Django's CursorWrapper fetches from its DB-API cursor, after this returns.
                wrapper.cursor = timed_rows(wrapper.cursor, state, execution)
        except Exception as error:
            internal_error(error)


@contextmanager
def track_queries() -> Iterator[None]:
    """Count every query on every database connection of this thread while active."""
    from django.db import connections

    with ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(_sql_wrapper))
        yield


def install_cache_tracking() -> None:
    from django.conf import settings
    from django.core.cache import caches

    for alias in getattr(settings, "CACHES", {}):
        with capture_internal_exceptions():
            backend = type(caches[alias])
            if backend.__dict__.get(_PATCHED):
                continue
            _patch_get(backend)
            _patch_timed(backend, "set")
            if "get_many" in backend.__dict__:
                _patch_get_many(backend)
            setattr(backend, _PATCHED, True)


def _patch_get(backend: type) -> None:
    original = backend.get  # type: ignore[attr-defined]

    @functools.wraps(original)
    def get(self: Any, key: Any, default: Any = None, version: Any = None) -> Any:
        state = current_request()
        if state is None:
            return original(self, key, default, version)
        start = time.perf_counter()
        value = original(self, key, _MISSING, version)
        hit = value is not _MISSING
        state.add_cache(hit, time.perf_counter() - start)
        return value if hit else default

    backend.get = get  # type: ignore[attr-defined]


def _patch_get_many(backend: type) -> None:
    original = backend.get_many  # type: ignore[attr-defined]

    @functools.wraps(original)
    def get_many(self: Any, keys: Any, version: Any = None) -> Any:
        state = current_request()
        if state is None:
            return original(self, keys, version)
        keys = list(keys)
        start = time.perf_counter()
        found = original(self, keys, version)
        elapsed = time.perf_counter() - start
        state.cache_hits += len(found)
        state.cache_misses += len(keys) - len(found)
        state.cache_time += elapsed
        return found

    backend.get_many = get_many  # type: ignore[attr-defined]


def _patch_timed(backend: type, name: str) -> None:
    original = getattr(backend, name)

    @functools.wraps(original)
    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        state = current_request()
        if state is None:
            return original(self, *args, **kwargs)
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            state.add_cache(None, time.perf_counter() - start)

    setattr(backend, name, timed)


def install_template_tracking() -> None:
    from django.template.base import Template

    if Template.__dict__.get(_PATCHED):
        return
    original = Template.render

    @functools.wraps(original)
    def render(self: Any, context: Any) -> Any:
        state = current_request()
        if state is None:
            return original(self, context)
        # Included templates render inside their parent: time only the outermost.
        state.template_depth += 1
        start = time.perf_counter()
        try:
            return original(self, context)
        finally:
            state.template_depth -= 1
            if state.template_depth == 0:
                state.template_time += time.perf_counter() - start

    Template.render = render
    setattr(Template, _PATCHED, True)


def install_thread_profiling() -> None:
    """Profile the sync code Django's async handler runs in a worker thread.

    Under ASGI, Django runs a sync view (and sync-only middleware, template
    rendering) through ``sync_to_async`` in the request's thread-sensitive
    thread, where a profiler on the event loop sees only ``[await]``.
    ``django.core.handlers.base.sync_to_async`` is replaced by one whose
    ``run_sync`` (the name the tree builder grafts thread sessions below, as
    for anyio's) runs the function under a profiler of its own in that thread
    when the calling request is being profiled, and adds the thread's CPU
    time to the request's. Otherwise it awaits Django's own conversion.
    """
    from django.core.handlers import base

    original = base.sync_to_async
    if getattr(original, _PATCHED, False):
        return

    def sync_to_async(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        plain = original(func, *args, **kwargs)

        async def run_sync(*call_args: Any, **call_kwargs: Any) -> Any:
            state = current_request()
            if state is None or state.profiler is None or not state.profiler.running:
                return await plain(*call_args, **call_kwargs)
            spent = [0.0, 0.0, 0.0]
            profiled = timed_in_thread(profiled_in_thread(func, state), spent)
            try:
                return await original(profiled, *args, **kwargs)(*call_args, **call_kwargs)
            finally:
                add_thread_time(state, spent)

        return run_sync

    setattr(sync_to_async, _PATCHED, True)
    base.sync_to_async = sync_to_async
