"""WSGI middleware shared by the Flask integration and the zero-code wrapper.

The response iterable is wrapped so the request is timed until the body has
been sent (streaming included); ``close`` is always forwarded, status,
headers, body and exceptions pass through untouched. The profiler covers the
app call, where a WSGI app does its work; a streamed body's generator is timed
but not profiled.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .core.lifecycle import MonitoredRequest
from .core.monitor import Monitor
from .core.record import BODY_CAPTURE_LIMIT
from .core.redaction import RedactionPolicy
from .utils.logger import capture_internal_exceptions, internal_error

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


#: Where a framework integration leaves an exception it turned into a response
#: (Flask's ``got_request_exception``), for the WSGI layer to count at a 5xx.
EXCEPTION_KEY = "performance_monitor.exception"


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
        except Exception as error:
            internal_error(error)
            sampled = None
        if sampled is None:
            return self.app(environ, start_response)
        call = _WSGIRequest(
            self, environ, start_response, sampled, sys._getframe() if sampled else None
        )
        if sampled and call.state is not None and self.monitor.config.track_request_body:
            with capture_internal_exceptions():
                call.body = BodyTee(environ.get("wsgi.input"), BODY_CAPTURE_LIMIT)
                environ["wsgi.input"] = call.body
        try:
            result = self.app(environ, call.monitored_start_response)
        except BaseException as error:
            call.finish(error)
            raise
        if sampled and call.state is not None and call.state.profiler is not None:
            # Profile only the app call: a body the server never iterates (a
            # test client, say) must not leave a profiler running on this thread.
            self.monitor.stop_profiling(call.state)
        if isinstance(result, (list, tuple)):
            call.size = sum(len(chunk) for chunk in result) if sampled else 0
            call.complete = True
            call.finish()
            return result
        call.result = result
        # The server sends the body, then calls close().
        call.hand_over()
        return call


class _WSGIRequest(MonitoredRequest):
    """A WSGI request; for a streamed body, also the iterable handed to the server.

    A list/tuple body (what most apps return) is handed back unchanged and the
    request finished at once; any other iterable is returned as this object,
    iterated through :meth:`__iter__` (a generator: no Python method call per
    chunk) and finished when exhausted or closed. ``close`` is always forwarded.
    """

    __slots__ = ("owner", "environ", "start_response", "headers", "size", "result", "body")

    def __init__(
        self,
        owner: MonitoredWSGIApp,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        sampled: bool,
        frame: Any,
    ) -> None:
        self.owner = owner
        self.environ = environ
        self.start_response = start_response
        self.headers: list[Any] | tuple[()] = ()
        self.size = 0
        self.result: Iterable[bytes] = ()
        self.body: BodyTee | None = None
        MonitoredRequest.__init__(
            self,
            owner.monitor,
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO") or "/",
            sampled,
            frame,
        )

    def monitored_start_response(self, status: str, headers: list[Any], *args: Any) -> Any:
        if self.state is not None:
            timing = self.server_timing()
            if timing is not None:
                headers = [*headers, ("Server-Timing", timing)]
        self.status = int(status[:3]) if status[:3].isdigit() else 0
        self.headers = headers
        if self.owner.route_resolver is None:
            # Flask still holds the request here; it clears it before the body is sent.
            rule = getattr(self.environ.get("werkzeug.request"), "url_rule", None)
            self.route = getattr(rule, "rule", None)
        return self.start_response(status, headers, *args)

    def __iter__(self) -> Iterator[bytes]:
        sampled = self.state is not None
        try:
            # Not ``yield from``: closing this generator must not close the app's iterable
            # a second time (close() does that).
            for chunk in self.result:  # noqa: UP028
                if sampled:
                    self.size += len(chunk)
                yield chunk
        except Exception as error:
            self.finish(error)
            raise
        self.complete = True
        self.finish()

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.finish()

    def finish(self, error: BaseException | None = None) -> None:
        if self.finished:  # closed after the body was exhausted: already counted
            return
        if self.exception is None:
            self.exception = self.environ.get(EXCEPTION_KEY)
        MonitoredRequest.finish(self, error)

    def traceparent(self) -> str | None:
        return self.environ.get("HTTP_TRACEPARENT")

    def resolve_route(self) -> str | None:
        resolver = self.owner.route_resolver
        return resolver(self.environ) if resolver is not None else None

    def details(self) -> dict[str, Any]:
        # The headers are read from a copy of the environ on the sender thread.
        details: dict[str, Any] = {
            "request": functools.partial(request_details, dict(self.environ)),
            "response_size": self.size,
        }
        for name, value in self.headers:
            if name.lower() == "content-type":
                details["content_type"] = value
        if self.body is not None:
            config = self.owner.monitor.config
            details["request_body"] = RedactionPolicy.of(
                config.sensitive_params, config.redaction_allow
            ).body(
                bytes(self.body.captured), config.max_body_size, self.environ.get("CONTENT_TYPE")
            )
        return details


class BodyTee:
    """``wsgi.input`` as the app reads it, keeping a copy of the first ``limit`` bytes."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.captured = bytearray()

    def _keep(self, data: bytes) -> bytes:
        room = self.limit - len(self.captured)
        if room > 0 and data:
            self.captured += data[:room]
        return data

    def read(self, *args: Any) -> bytes:
        return self._keep(self.stream.read(*args))

    def readline(self, *args: Any) -> bytes:
        return self._keep(self.stream.readline(*args))

    def readinto(self, buffer: Any) -> int:
        count = self.stream.readinto(buffer)
        if count:
            self._keep(bytes(memoryview(buffer)[:count]))
        return int(count or 0)

    def readlines(self, *args: Any) -> list[bytes]:
        return [self._keep(line) for line in self.stream.readlines(*args)]

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            yield self._keep(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
