"""WSGI middleware shared by the Flask integration and the zero-code wrapper.

The response iterable is wrapped so the request is timed until the body has
been sent (streaming included); ``close`` is always forwarded, status,
headers, body and exceptions pass through untouched. The profiler covers the
app call, where a WSGI app does its work; a streamed body's generator is timed
but not profiled.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import Any

from .core.monitor import UNMATCHED_ROUTE, Monitor
from .core.request import RequestState, reset_current, set_current
from .core.trace_context import adopt_traceparent, server_timing_of
from .utils.logger import internal_error

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
RouteResolver = Callable[[dict[str, Any]], "str | None"]


def request_details(environ: dict[str, Any]) -> dict[str, Any]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    forwarded = headers.get("x-forwarded-for", "")
    return {
        "query_string": environ.get("QUERY_STRING", ""),
        "headers": headers,
        "remote_ip": forwarded.split(",")[0].strip() or environ.get("REMOTE_ADDR"),
    }


def werkzeug_route(environ: dict[str, Any]) -> str | None:
    """The Flask/Werkzeug URL rule of the request (Werkzeug keeps the request in the environ)."""
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    return getattr(rule, "rule", None)


class MonitoredWSGIApp:
    """Wraps a WSGI callable; ``route_resolver`` names the route after the app ran."""

    def __init__(
        self, app: WSGIApp, monitor: Monitor, route_resolver: RouteResolver | None = None
    ) -> None:
        self.app = app
        self.monitor = monitor
        self.route_resolver = route_resolver

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            sampled = self.monitor.decide(environ.get("PATH_INFO") or "/")
        except Exception:
            internal_error("starting a request")
            sampled = None
        if sampled is None:
            return self.app(environ, start_response)
        if not sampled:
            call = _Unsampled(self, environ, start_response)
            try:
                result = self.app(environ, call.monitored_start_response)
            except BaseException:
                call.finish(error=True)
                raise
            if isinstance(result, (list, tuple)):
                call.finish()
                return result
            call.result = result
            # The server sends the body, then calls close(): until then a flush waits for it.
            monitor = self.monitor
            call.handed = weakref.ref(call, monitor.forget_finishing)
            monitor.finishing.add(call.handed)
            return call
        try:
            state = self.monitor.begin(
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO") or "/",
                force_sample=True,
            )
        except Exception:
            internal_error("starting a request")
            state = None
        if state is None:
            return self.app(environ, start_response)
        response = _MonitoredResponse(self, state, environ)
        adopt_traceparent(state, environ.get("HTTP_TRACEPARENT"))
        server_timing = self.monitor.config.server_timing

        def monitored_start_response(status: str, headers: list[Any], *args: Any) -> Any:
            if server_timing:
                try:
                    headers = [*headers, ("Server-Timing", server_timing_of(state))]
                except Exception:
                    internal_error("adding the Server-Timing header")
            response.status = status
            response.headers = headers
            if self.route_resolver is None:
                # Flask still holds the request here; it clears it before the body is sent.
                state.route = werkzeug_route(environ)
            return start_response(status, headers, *args)

        try:
            result = self.app(environ, monitored_start_response)
        except BaseException:
            response.done(error=True)
            raise
        if state.profiler is not None:
            # Profile only the app call: a body the server never iterates (a
            # test client, say) must not leave a profiler running on this thread.
            self.monitor.stop_profiling(state)
        if isinstance(result, (list, tuple)):
            response.size = sum(len(chunk) for chunk in result)
            response.done()
            return result
        response.result = result
        # The server sends the body, then calls close(): until then a flush waits for it.
        monitor = self.monitor
        response.handed = weakref.ref(response, monitor.forget_finishing)
        monitor.finishing.add(response.handed)
        return response


class _Unsampled:
    """An unsampled request: the clock, status and route, then one aggregate update.

    No :class:`RequestState`, no context variable. A list/tuple body (what
    most apps return) is handed back unchanged and counted at once; any other
    iterable is returned as this object, iterated through :meth:`__iter__` (a
    generator: no Python method call per chunk) and counted when exhausted or
    closed.
    """

    __slots__ = (
        "owner",
        "environ",
        "start_response",
        "start",
        "status",
        "route",
        "result",
        "done",
        "handed",
        "__weakref__",
    )

    def __init__(
        self, owner: MonitoredWSGIApp, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> None:
        self.owner = owner
        self.environ = environ
        self.start_response = start_response
        self.status: str | None = None
        self.route: str | None = None
        self.done = False
        self.handed: weakref.ref[_Unsampled] | None = None
        self.result: Iterable[bytes] = ()
        self.start = perf_counter()

    def monitored_start_response(self, status: str, headers: list[Any], *args: Any) -> Any:
        self.status = status
        if self.owner.route_resolver is None:
            # Flask still holds the request here; it clears it before the body is sent.
            rule = getattr(self.environ.get("werkzeug.request"), "url_rule", None)
            self.route = getattr(rule, "rule", None)
        return self.start_response(status, headers, *args)

    def __iter__(self) -> Iterator[bytes]:
        try:
            # Not ``yield from``: closing this generator must not close the app's iterable
            # a second time (close() does that).
            for chunk in self.result:  # noqa: UP028
                yield chunk
        except Exception:
            self.finish(error=True)
            raise
        self.finish()

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.finish()

    def finish(self, error: bool = False) -> None:
        if self.done:
            return
        self.done = True
        duration = perf_counter() - self.start
        try:
            owner = self.owner
            monitor = owner.monitor
            if self.handed is not None:
                monitor.finishing.discard(self.handed)
            route = self.route
            if route is None and owner.route_resolver is not None:
                route = owner.route_resolver(self.environ)
            status = self.status
            monitor.count(
                route or UNMATCHED_ROUTE,
                self.environ.get("REQUEST_METHOD", "GET"),
                int(status[:3]) if status and not error else 500,
                duration,
                error,
                self.environ.get("PATH_INFO") or "/",
            )
        except Exception:
            internal_error("finishing a request")


class _MonitoredResponse:
    """The app's iterable, unchanged chunk by chunk; finishes the request on exhaustion or close."""

    __slots__ = (
        "owner",
        "state",
        "environ",
        "token",
        "status",
        "headers",
        "size",
        "finished",
        "result",
        "_iterator",
        "handed",
        "__weakref__",
    )

    def __init__(
        self, owner: MonitoredWSGIApp, state: RequestState, environ: dict[str, Any]
    ) -> None:
        self.owner = owner
        self.state = state
        self.environ = environ
        # Only sampled requests need to be found by the SQL/cache hooks and decorators.
        self.token = set_current(state) if state.sampled else None
        self.status: str | None = None
        self.headers: list[Any] = []
        self.size = 0
        self.finished = False
        self.result: Iterable[bytes] = ()
        self._iterator: Iterator[bytes] | None = None
        self.handed: weakref.ref[_MonitoredResponse] | None = None

    def __iter__(self) -> _MonitoredResponse:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self.result)
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self.done()
            raise
        except BaseException:
            self.done(error=True)
            raise
        self.size += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.done()

    def done(self, error: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            self._finish(error)
        except Exception:
            internal_error("finishing a request")
        finally:
            if self.handed is not None:
                self.owner.monitor.finishing.discard(self.handed)
        if self.token is not None:
            reset_current(self.token)

    def _finish(self, error: bool) -> None:
        monitor = self.owner.monitor
        state = self.state
        duration = monitor.stop_timing(state)
        resolver = self.owner.route_resolver
        if state.route is None and resolver is not None:
            state.route = resolver(self.environ)
        status = int(self.status[:3]) if self.status and not error else 500
        details = None
        if state.sampled:
            details = request_details(self.environ)
            details["response_size"] = self.size
            for name, value in self.headers:
                if name.lower() == "content-type":
                    details["content_type"] = value
        monitor.finish(state, status, duration, error=error, details=details)
