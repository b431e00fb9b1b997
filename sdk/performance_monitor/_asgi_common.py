"""Pure ASGI middleware shared by the FastAPI/Starlette integration.

Messages are forwarded unchanged. The request is timed until the final body
message, so a background task that runs after the response is not billed to
it; streaming responses are timed to their last chunk. Sampled requests are
profiled with an async-aware pyinstrument profiler (one per request, so
concurrent requests never share a session) and the sync endpoints Starlette
runs in its thread pool are profiled in their worker thread
(:func:`install_threadpool_profiling`), whose CPU time is added to the
request's ``cpu_time``.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from .core.monitor import UNMATCHED_ROUTE, Monitor
from .core.profiler import RequestProfiler
from .core.record import BODY_CAPTURE_LIMIT, redact_body
from .core.request import RequestState, current_request, reset_current, set_current
from .core.trace_context import adopt_traceparent, server_timing_of
from .utils.logger import guard, internal_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteResolver = Callable[[Scope], "str | None"]


def scope_route(scope: Scope) -> str | None:
    """The route template Starlette/FastAPI matched (``scope['route'].path``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return scope.get("root_path", "") + path if scope.get("root_path") else path
    return None


class MonitoredASGIApp:
    def __init__(
        self,
        app: ASGIApp,
        monitor: Monitor,
        *,
        route_resolver: RouteResolver = scope_route,
        track_request_body: bool = False,
        track_response_body: bool = False,
    ) -> None:
        self.app = app
        self.monitor = monitor
        self.route_resolver = route_resolver
        self.track_request_body = track_request_body
        self.track_response_body = track_response_body
        if monitor.active:
            install_threadpool_profiling()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.monitor.active:
                receive = _flushing_at_shutdown(receive, self.monitor)
            await self.app(scope, receive, send)
            return
        try:
            sampled = self.monitor.decide(scope["path"])
        except Exception:
            internal_error("starting a request")
            sampled = None
        if sampled is None:
            await self.app(scope, receive, send)
            return
        if not sampled:
            counting = _CountingSend(self, scope, send)
            try:
                await self.app(scope, receive, counting)
            except BaseException:
                counting.finish(True)
                raise
            counting.finish(False)
            return
        try:
            state = self.monitor.begin(scope["method"], scope["path"], force_sample=True)
        except Exception:
            internal_error("starting a request")
            state = None
        if state is None:
            await self.app(scope, receive, send)
            return
        token = set_current(state) if state.sampled else None
        exchange = _Exchange(self, scope, state)
        if state.sampled and self.track_request_body:
            receive = exchange.wrap_receive(receive)
        adopt_traceparent(state, _header(scope, b"traceparent"))
        server_timing = self.monitor.config.server_timing

        async def monitored_send(message: Message) -> None:
            if server_timing and message["type"] == "http.response.start":
                message = _with_server_timing(message, state)
            exchange.saw(message)
            if exchange.complete:
                # Until done() runs after the send, a flush waits for this request.
                monitor = exchange.owner.monitor
                exchange.handed = weakref.ref(exchange, monitor.forget_finishing)
                monitor.finishing.add(exchange.handed)
            try:
                await send(message)
            finally:
                if exchange.complete:
                    exchange.done()

        try:
            await self.app(scope, receive, monitored_send)
        except BaseException:
            exchange.done(error=True)
            raise
        finally:
            exchange.done()
            if token is not None:
                reset_current(token)


def _flushing_at_shutdown(receive: Receive, monitor: Monitor) -> Receive:
    """``receive`` of the lifespan scope, sending what is queued when the server shuts down.

    uvicorn re-raises the SIGTERM it handled once it has shut down, so the
    process ends by the signal and ``atexit`` (the sender's flush) never runs;
    its lifespan shutdown comes after the last response.
    """

    async def monitored_receive() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            with guard("flushing at shutdown"):
                timeout = monitor.config.shutdown_timeout
                await asyncio.get_running_loop().run_in_executor(None, monitor.flush, timeout)
        return message

    return monitored_receive


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The request header ``name`` (lower case), or None when absent or repeated."""
    found = None
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            if found is not None:
                return None  # the W3C spec: several traceparent headers are invalid
            found = value
    return found


def _with_server_timing(message: Message, state: RequestState) -> Message:
    try:
        headers = [
            *message.get("headers", ()),
            (b"server-timing", server_timing_of(state).encode()),
        ]
    except Exception:
        internal_error("adding the Server-Timing header")
        return message
    return {**message, "headers": headers}


class _CountingSend:
    """``send`` for an unsampled request: notes the status, counts the request at its final body.

    No :class:`RequestState`, no context variable, one aggregate update.
    """

    __slots__ = ("owner", "scope", "send", "start", "status", "done", "handed", "__weakref__")

    def __init__(self, owner: MonitoredASGIApp, scope: Scope, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self.send = send
        self.status = 0
        self.done = False
        self.handed: weakref.ref[_CountingSend] | None = None
        self.start = perf_counter()

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message.get("status", 0)
        elif kind == "http.response.body" and not message.get("more_body", False):
            # Until finish() runs after the send, a flush waits for this request.
            monitor = self.owner.monitor
            self.handed = weakref.ref(self, monitor.forget_finishing)
            monitor.finishing.add(self.handed)
            try:
                await self.send(message)
            finally:
                self.finish(False)
            return
        await self.send(message)

    def finish(self, error: bool) -> None:
        if self.done:
            return
        self.done = True
        duration = perf_counter() - self.start
        try:
            owner = self.owner
            monitor = owner.monitor
            if self.handed is not None:
                monitor.finishing.discard(self.handed)
            scope = self.scope
            # An exception after the response was sent does not change what the client got.
            status = self.status if self.status and not error else 500
            monitor.count(
                owner.route_resolver(scope) or UNMATCHED_ROUTE,
                scope["method"],
                status,
                duration,
                error,
                scope["path"],
            )
        except Exception:
            internal_error("finishing a request")


class _Exchange:
    __slots__ = (
        "owner",
        "scope",
        "state",
        "status",
        "content_type",
        "size",
        "complete",
        "finished",
        "request_body",
        "response_body",
        "handed",
        "__weakref__",
    )

    def __init__(self, owner: MonitoredASGIApp, scope: Scope, state: RequestState) -> None:
        self.owner = owner
        self.scope = scope
        self.state = state
        self.status = 0
        self.content_type: str | None = None
        self.size = 0
        self.complete = False
        self.finished = False
        self.request_body = bytearray()
        self.response_body = bytearray()
        self.handed: weakref.ref[_Exchange] | None = None

    def wrap_receive(self, receive: Receive) -> Receive:
        limit = BODY_CAPTURE_LIMIT

        async def monitored_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request" and len(self.request_body) < limit:
                self.request_body += message.get("body", b"")[:limit]
            return message

        return monitored_receive

    def saw(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self.status = message.get("status", 0)
            if self.state.sampled:
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        self.content_type = value.decode("latin-1")
        elif kind == "http.response.body":
            body = message.get("body", b"")
            self.size += len(body)
            capture = self.state.sampled and self.owner.track_response_body
            if capture and len(self.response_body) < BODY_CAPTURE_LIMIT:
                self.response_body += body[:BODY_CAPTURE_LIMIT]
            if not message.get("more_body", False):
                self.complete = True

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

    def _finish(self, error: bool) -> None:
        monitor = self.owner.monitor
        state = self.state
        duration = monitor.stop_timing(state)
        state.route = state.route or self.owner.route_resolver(self.scope)
        # An exception after the response was sent does not change what the client got.
        status = self.status if self.status and not (error and not self.complete) else 500
        details = None
        if state.sampled:
            details = self._details(status)
        monitor.finish(state, status, duration, error=error, details=details)

    def _details(self, status: int) -> dict[str, Any]:
        scope = self.scope
        config = self.owner.monitor.config
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        client = scope.get("client")
        details: dict[str, Any] = {
            "query_string": scope.get("query_string", b"").decode("latin-1"),
            "headers": headers,
            "remote_ip": client[0] if client else None,
            "response_size": self.size,
            "content_type": self.content_type,
        }
        extra = config.sensitive_params
        if self.owner.track_request_body:
            details["request_body"] = redact_body(
                bytes(self.request_body), config.max_body_size, extra
            )
        if self.owner.track_response_body:
            details["response_body"] = redact_body(
                bytes(self.response_body), config.max_body_size, extra
            )
        return details


_threadpool_installed = False


def install_threadpool_profiling() -> None:
    """Profile functions Starlette/FastAPI hand to ``anyio.to_thread.run_sync``.

    pyinstrument samples one thread; a ``def`` endpoint runs in a worker
    thread, so a profiler on the event loop would only see ``[await]``. The
    patched ``run_sync`` is a pass-through unless the calling context belongs
    to a sampled request that is still being profiled.
    """
    global _threadpool_installed
    if _threadpool_installed:
        return
    import anyio.to_thread

    original = anyio.to_thread.run_sync

    @functools.wraps(original)
    async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        state = current_request()
        if state is None:
            return await original(func, *args, **kwargs)
        spent = [0.0]
        if state.profiler is not None and state.profiler.running:
            func = _profiled_in_thread(func, state)
        try:
            return await original(_timed_in_thread(func, spent), *args, **kwargs)
        finally:
            # Added here, on the event loop, so the worker never writes to the state.
            state.thread_cpu += spent[0]

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    _threadpool_installed = True


def _timed_in_thread(func: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``func`` adding the CPU time of the worker thread that runs it to ``spent[0]``."""

    @functools.wraps(func)
    def run(*args: Any) -> Any:
        started = time.thread_time()
        try:
            return func(*args)
        finally:
            spent[0] += time.thread_time() - started

    return run


def _profiled_in_thread(func: Callable[..., Any], state: RequestState) -> Callable[..., Any]:
    profiler = state.profiler
    assert profiler is not None
    interval = profiler._profiler.interval
    deadline_left = max(0.001, profiler._profiler.deadline - time.monotonic())

    @functools.wraps(func)
    def run(*args: Any) -> Any:
        thread_profiler = RequestProfiler(interval=interval, max_duration=deadline_left)
        started = thread_profiler.start()
        try:
            return func(*args)
        finally:
            if started:
                with guard("stopping a thread-pool profiler"):
                    session = thread_profiler.stop()
                    if session is not None:
                        state.thread_sessions.append(session)

    return run
