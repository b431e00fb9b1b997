"""``performance_monitor.django.PerformanceMiddleware``, configured from ``settings.PERFORMANCE_MONITOR``."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from .._wsgi_common import EXCEPTION_KEY, request_details
from ..core.lifecycle import MonitoredRequest
from ..core.monitor import Monitor
from ..utils.config import Config
from ..utils.logger import capture_internal_exceptions, internal_error
from .instrumentation import (
    install_cache_tracking,
    install_template_tracking,
    install_thread_profiling,
    track_queries,
)

# Django builds a middleware chain per handler (the test Client builds one per
# client); one monitor, and so one sender thread, per distinct configuration.
_monitors: dict[str, Monitor] = {}


def _monitor_for(settings_dict: dict[str, Any]) -> Monitor:
    key = json.dumps(settings_dict, sort_keys=True, default=repr)
    monitor = _monitors.get(key)
    if monitor is None:
        import django

        config = Config.from_django_settings(settings_dict)
        monitor = Monitor(config, framework="django", framework_version=django.get_version())
        _monitors[key] = monitor
    return monitor


class PerformanceMiddleware:
    """Sync under WSGI; under ASGI async, so an ``async def`` view is profiled on the event loop.

    Django passes an async ``get_response`` when the handler is async (see
    "Asynchronous support" in Django's middleware docs); this middleware then
    is a coroutine function and profiles the request with the async-aware
    profiler the ASGI integration uses. Sync views under ASGI run in the
    request's thread-sensitive worker thread, as do the ORM calls of async
    views (``sync_to_async``, the async ORM): SQL tracking is entered there.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.asynchronous = iscoroutinefunction(get_response)
        if self.asynchronous:
            markcoroutinefunction(self)
        self.monitor = _monitor_for(dict(getattr(settings, "PERFORMANCE_MONITOR", {}) or {}))
        config = self.monitor.config
        if self.monitor.active:
            with capture_internal_exceptions():
                if config.track_cache:
                    install_cache_tracking()
                if config.track_templates:
                    install_template_tracking()
                if self.asynchronous:
                    install_thread_profiling()

    def __call__(self, request: Any) -> Any:
        if self.asynchronous:
            return self._acall(request)
        try:
            sampled = self.monitor.decide(request.path_info or "/")
        except Exception as error:
            internal_error(error)
            sampled = None
        if sampled is None:
            return self.get_response(request)
        call = _DjangoRequest(self.monitor, request, sampled, sys._getframe() if sampled else None)
        try:
            if call.state is not None:
                # Always wrapped when sampled: ``@monitor_view(track_sql=...)`` decides later.
                with track_queries():
                    response = self.get_response(request)
            else:
                response = self.get_response(request)
        except BaseException as error:
            call.finish(error)
            raise
        return call.respond(response)

    async def _acall(self, request: Any) -> Any:
        try:
            sampled = self.monitor.decide(request.path_info or "/")
        except Exception as error:
            internal_error(error)
            sampled = None
        if sampled is None:
            return await self.get_response(request)
        frame = sys._getframe() if sampled else None
        call = _DjangoRequest(self.monitor, request, sampled, frame, "enabled")
        queries = ExitStack() if call.state is not None else None
        try:
            if queries is None:
                response = await self.get_response(request)
            else:
                with capture_internal_exceptions():
                    await sync_to_async(queries.enter_context)(track_queries())
                try:
                    response = await self.get_response(request)
                finally:
                    with capture_internal_exceptions():
                        await sync_to_async(queries.close)()
        except BaseException as error:
            call.finish(error)
            raise
        return call.respond(response)

    def process_exception(self, request: Any, exception: Exception) -> None:
        """The view raised: Django turns it into a response (a 500, or a 404 for Http404)."""
        request.META[EXCEPTION_KEY] = exception


class _DjangoRequest(MonitoredRequest):
    __slots__ = ("request", "response", "async_mode")

    def __init__(
        self,
        monitor: Monitor,
        request: Any,
        sampled: bool,
        frame: Any,
        async_mode: Literal["enabled", "disabled"] = "disabled",
    ) -> None:
        self.request = request
        self.response: Any = None
        self.async_mode = async_mode
        method, path = request.method or "GET", request.path_info or "/"
        MonitoredRequest.__init__(self, monitor, method, path, sampled, frame, async_mode)

    def respond(self, response: Any) -> Any:
        """Note the response; finish now, or when Django closes a streaming one."""
        self.response = response
        self.status = response.status_code
        if self.state is not None:
            timing = self.server_timing()
            if timing is not None:
                response["Server-Timing"] = timing
        if getattr(response, "streaming", False):
            # The body is iterated after we return: finish when Django closes the response.
            closers = getattr(response, "_resource_closers", None)
            if closers is not None:
                if self.state is not None and self.async_mode == "enabled":
                    # Django closes it in a worker thread; the profiler stops on its own.
                    self.monitor.stop_profiling(self.state)
                self.hand_over()
                closers.append(self.finish)
                return response
        self.complete = True
        self.finish()
        return response

    def finish(self, error: BaseException | None = None) -> None:
        if self.finished:
            return
        if self.exception is None:
            self.exception = self.request.META.get(EXCEPTION_KEY)
        MonitoredRequest.finish(self, error)

    def traceparent(self) -> str | None:
        header: str | None = self.request.META.get("HTTP_TRACEPARENT")
        return header

    def resolve_route(self) -> str | None:
        match = getattr(self.request, "resolver_match", None)
        route: str | None = getattr(match, "route", None)
        if route is not None:
            return "/" + route.lstrip("^").lstrip("/")
        return None

    def details(self) -> dict[str, Any]:
        # The headers are read from a copy of META on the sender thread.
        details: dict[str, Any] = {
            "request": functools.partial(request_details, dict(self.request.META))
        }
        response = self.response
        if response is not None:
            details["content_type"] = response.get("Content-Type")
            if not getattr(response, "streaming", False):
                details["response_size"] = len(response.content)
        return details
