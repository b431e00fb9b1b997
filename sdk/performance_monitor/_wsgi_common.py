"""WSGI middleware shared by the Flask integration and the zero-code wrapper.

The response iterable is wrapped so the request is timed until the body has
been sent (streaming included); ``close`` is always forwarded, status,
headers, body and exceptions pass through untouched. The profiler covers the
app call, where a WSGI app does its work; a streamed body's generator is timed
but not profiled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .core.monitor import Monitor
from .core.request import RequestState, reset_current, set_current
from .utils.logger import guard

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


class MonitoredWSGIApp:
    """Wraps a WSGI callable; ``route_resolver`` names the route after the app ran."""

    def __init__(
        self, app: WSGIApp, monitor: Monitor, route_resolver: RouteResolver | None = None
    ) -> None:
        self.app = app
        self.monitor = monitor
        self.route_resolver = route_resolver

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        state = None
        with guard("starting a request"):
            state = self.monitor.begin(
                environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "") or "/"
            )
        if state is None:
            return self.app(environ, start_response)
        token = set_current(state)
        response = _Response(self, state, environ, token)

        def monitored_start_response(status: str, headers: list[Any], *args: Any) -> Any:
            response.status = status
            response.headers = headers
            return start_response(status, headers, *args)

        try:
            result = self.app(environ, monitored_start_response)
        except BaseException:
            response.done(error=True)
            raise
        # Profile only the app call: a body the server never iterates (a test
        # client, say) must not leave a profiler running on this thread.
        self.monitor.stop_profiling(state)
        if isinstance(result, (list, tuple)):
            response.size = sum(len(chunk) for chunk in result)
            response.done()
            return result
        return _ResponseIterator(result, response)


class _Response:
    __slots__ = ("owner", "state", "environ", "token", "status", "headers", "size", "finished")

    def __init__(
        self, owner: MonitoredWSGIApp, state: RequestState, environ: dict[str, Any], token: Any
    ) -> None:
        self.owner = owner
        self.state = state
        self.environ = environ
        self.token = token
        self.status: str | None = None
        self.headers: list[Any] = []
        self.size = 0
        self.finished = False

    def done(self, error: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        with guard("finishing a request"):
            monitor = self.owner.monitor
            state = self.state
            duration = monitor.stop_timing(state)
            if state.route is None and self.owner.route_resolver is not None:
                state.route = self.owner.route_resolver(self.environ)
            status = int(self.status.split(" ", 1)[0]) if self.status and not error else 500
            details = None
            if state.sampled:
                details = request_details(self.environ)
                details["response_size"] = self.size
                for name, value in self.headers:
                    if name.lower() == "content-type":
                        details["content_type"] = value
            monitor.finish(state, status, duration, error=error, details=details)
        reset_current(self.token)


class _ResponseIterator:
    """Yields the app's chunks unchanged, counting bytes; finishes on exhaustion or close."""

    __slots__ = ("_result", "_iterator", "_response")

    def __init__(self, result: Iterable[bytes], response: _Response) -> None:
        self._result = result
        self._iterator: Iterator[bytes] | None = None
        self._response = response

    def __iter__(self) -> _ResponseIterator:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._result)
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._response.done()
            raise
        except BaseException:
            self._response.done(error=True)
            raise
        self._response.size += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._response.done()
