"""``performance_monitor.django.PerformanceMiddleware``, configured from ``settings.PERFORMANCE_MONITOR``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from .._wsgi_common import EXCEPTION_KEY, request_details
from ..core.lifecycle import MonitoredRequest
from ..core.monitor import Monitor
from ..utils.config import Config
from ..utils.logger import capture_internal_exceptions
from .instrumentation import install_cache_tracking, install_template_tracking, track_queries

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
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.monitor = _monitor_for(dict(getattr(settings, "PERFORMANCE_MONITOR", {}) or {}))
        config = self.monitor.config
        if self.monitor.active:
            with capture_internal_exceptions():
                if config.track_cache:
                    install_cache_tracking()
                if config.track_templates:
                    install_template_tracking()

    def __call__(self, request: Any) -> Any:
        sampled = None
        with capture_internal_exceptions():
            sampled = self.monitor.decide(request.path_info or "/")
        if sampled is None:
            return self.get_response(request)
        call = _DjangoRequest(self.monitor, request, sampled, sys._getframe())
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
        call.response = response
        call.status = response.status_code
        timing = call.server_timing()
        if timing is not None:
            response["Server-Timing"] = timing
        if getattr(response, "streaming", False):
            # The body is iterated after we return: finish when Django closes the response.
            closers = getattr(response, "_resource_closers", None)
            if closers is not None:
                call.hand_over()
                closers.append(call.finish)
                return response
        call.complete = True
        call.finish()
        return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        """The view raised: Django turns it into a response (a 500, or a 404 for Http404)."""
        request.META[EXCEPTION_KEY] = exception


class _DjangoRequest(MonitoredRequest):
    __slots__ = ("request", "response")

    def __init__(self, monitor: Monitor, request: Any, sampled: bool, frame: Any) -> None:
        self.request = request
        self.response: Any = None
        super().__init__(monitor, request.method or "GET", request.path_info or "/", sampled, frame)

    def finish(self, error: BaseException | None = None) -> None:
        if self.exception is None:
            self.exception = self.request.META.get(EXCEPTION_KEY)
        super().finish(error)

    def traceparent(self) -> str | None:
        return self.request.META.get("HTTP_TRACEPARENT")

    def resolve_route(self) -> str | None:
        match = getattr(self.request, "resolver_match", None)
        if match is not None and match.route is not None:
            return "/" + match.route.lstrip("^").lstrip("/")
        return None

    def details(self) -> dict[str, Any]:
        details = request_details(self.request.META)
        response = self.response
        if response is not None:
            details["content_type"] = response.get("Content-Type")
            if not getattr(response, "streaming", False):
                details["response_size"] = len(response.content)
        return details
