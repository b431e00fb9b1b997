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
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .core.lifecycle import MonitoredRequest
from .core.monitor import Monitor
from .core.profiler import add_thread_time, profiled_in_thread, timed_in_thread
from .core.record import BODY_CAPTURE_LIMIT
from .core.redaction import RedactionPolicy
from .core.request import current_request
from .utils.logger import capture_internal_exceptions, internal_error

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
        except Exception as error:
            internal_error(error)
            sampled = None
        if sampled is None:
            await self.app(scope, receive, send)
            return
        call = _ASGIRequest(self, scope, send, sampled, sys._getframe() if sampled else None)
        if call.state is None:
            send = call.send_counted
        else:
            send = call.send_sampled
            if self.track_request_body:
                receive = call.wrap_receive(receive)
        try:
            await self.app(scope, receive, send)
        except BaseException as error:
            call.finish(error)
            raise
        call.finish()


def _flushing_at_shutdown(receive: Receive, monitor: Monitor) -> Receive:
    """``receive`` of the lifespan scope, sending what is queued when the server shuts down.

    uvicorn re-raises the SIGTERM it handled once it has shut down, so the
    process ends by the signal and ``atexit`` (the sender's flush) never runs;
    its lifespan shutdown comes after the last response.
    """

    async def monitored_receive() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            with capture_internal_exceptions():
                timeout = monitor.config.shutdown_timeout
                await asyncio.get_running_loop().run_in_executor(None, monitor.flush, timeout)
        return message

    return monitored_receive


class _ASGIRequest(MonitoredRequest):
    """An ASGI request: its ``send`` notes the status and finishes at the final body.

    Unsampled requests use :meth:`send_counted` (the status, nothing else);
    sampled ones :meth:`send_sampled` (content type, size, optionally bodies).
    """

    __slots__ = ("owner", "scope", "send", "content_type", "size", "request_body", "response_body")

    def __init__(
        self, owner: MonitoredASGIApp, scope: Scope, send: Send, sampled: bool, frame: Any
    ) -> None:
        self.owner = owner
        self.scope = scope
        self.send = send
        self.content_type: str | None = None
        self.size = 0
        if sampled:  # nothing allocated for an unsampled request
            self.request_body = bytearray()
            self.response_body = bytearray()
        MonitoredRequest.__init__(
            self, owner.monitor, scope["method"], scope["path"], sampled, frame
        )

    async def send_counted(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message.get("status", 0)
        elif kind == "http.response.body" and not message.get("more_body", False):
            # _send_final, inlined: one coroutine less per request.
            self.complete = True
            self.hand_over()
            try:
                await self.send(message)
            finally:
                self.finish()
            return
        await self.send(message)

    async def send_sampled(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            timing = self.server_timing()
            if timing is not None:
                headers = [*message.get("headers", ()), (b"server-timing", timing.encode())]
                message = {**message, "headers": headers}
            self.status = message.get("status", 0)
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
        elif kind == "http.response.body":
            body = message.get("body", b"")
            self.size += len(body)
            if self.owner.track_response_body and len(self.response_body) < BODY_CAPTURE_LIMIT:
                self.response_body += body[:BODY_CAPTURE_LIMIT]
            if not message.get("more_body", False):
                await self._send_final(message)
                return
        await self.send(message)

    async def _send_final(self, message: Message) -> None:
        self.complete = True
        self.hand_over()
        try:
            await self.send(message)
        finally:
            self.finish()

    def wrap_receive(self, receive: Receive) -> Receive:
        limit = BODY_CAPTURE_LIMIT

        async def monitored_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request" and len(self.request_body) < limit:
                self.request_body += message.get("body", b"")[:limit]
            return message

        return monitored_receive

    def traceparent(self) -> bytes | None:
        """The header, or None when absent or repeated (several are invalid, per the W3C)."""
        found = None
        for name, value in self.scope.get("headers", ()):
            if name.lower() == b"traceparent":
                if found is not None:
                    return None
                found = value
        return found

    def resolve_route(self) -> str | None:
        return self.owner.route_resolver(self.scope)

    def details(self) -> dict[str, Any]:
        scope = self.scope
        owner = self.owner
        config = owner.monitor.config
        raw = (list(scope.get("headers", ())), scope.get("query_string", b""), scope.get("client"))
        details: dict[str, Any] = {
            # Decoded on the sender thread.
            "request": functools.partial(scope_details, *raw),
            "response_size": self.size,
            "content_type": self.content_type,
        }
        policy = RedactionPolicy.of(config.sensitive_params, config.redaction_allow)
        if owner.track_request_body:
            headers = scope_details(*raw)["headers"]
            details["request_body"] = policy.body(
                bytes(self.request_body), config.max_body_size, headers.get("content-type")
            )
        if owner.track_response_body:
            details["response_body"] = policy.body(
                bytes(self.response_body), config.max_body_size, self.content_type
            )
        return details


def scope_details(
    headers: list[tuple[bytes, bytes]], query_string: bytes, client: Any
) -> dict[str, Any]:
    """query_string, headers and remote_ip of a request, from its scope's raw values."""
    return {
        "query_string": query_string.decode("latin-1"),
        "headers": {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers
        },
        "remote_ip": client[0] if client else None,
    }


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
        spent = [0.0, 0.0, 0.0]
        if state.profiler is not None and state.profiler.running:
            func = profiled_in_thread(func, state)
        try:
            return await original(timed_in_thread(func, spent), *args, **kwargs)
        finally:
            add_thread_time(state, spent)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    _threadpool_installed = True
