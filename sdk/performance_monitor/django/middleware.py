"""``performance_monitor.django.PerformanceMiddleware``, configured from ``settings.PERFORMANCE_MONITOR``."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from .._wsgi_common import request_details
from ..core.monitor import Monitor
from ..core.request import RequestState, reset_current, set_current
from ..core.trace_context import adopt_traceparent, server_timing_of
from ..utils.config import Config
from ..utils.logger import guard
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
            with guard("instrumenting Django"):
                if config.track_cache:
                    install_cache_tracking()
                if config.track_templates:
                    install_template_tracking()

    def __call__(self, request: Any) -> Any:
        state = None
        with guard("starting a request"):
            state = self.monitor.begin(request.method or "GET", request.path_info or "/")
        if state is None:
            return self.get_response(request)
        token = set_current(state) if state.sampled else None
        adopt_traceparent(state, request.META.get("HTTP_TRACEPARENT"))
        try:
            queries = track_queries() if state.sampled and state.track_sql else nullcontext()
            with queries:
                response = self.get_response(request)
        except BaseException:
            self._finish(state, request, None, error=True)
            if token is not None:
                reset_current(token)
            raise
        if state.sampled and self.monitor.config.server_timing:
            with guard("adding the Server-Timing header"):
                response["Server-Timing"] = server_timing_of(state)
        if getattr(response, "streaming", False):
            # The body is iterated after we return: finish when Django closes the response.
            closers = getattr(response, "_resource_closers", None)
            if closers is not None:
                closers.append(lambda: self._finish(state, request, response))
            else:
                self._finish(state, request, response)
        else:
            self._finish(state, request, response)
        if token is not None:
            reset_current(token)
        return response

    def _finish(
        self, state: RequestState, request: Any, response: Any, error: bool = False
    ) -> None:
        with guard("finishing a request"):
            duration = self.monitor.stop_timing(state)
            match = getattr(request, "resolver_match", None)
            if match is not None and match.route is not None:
                state.route = "/" + match.route.lstrip("^").lstrip("/")
            status = response.status_code if response is not None else 500
            details = None
            if state.sampled:
                details = request_details(request.META)
                if response is not None:
                    details["content_type"] = response.get("Content-Type")
                    if not getattr(response, "streaming", False):
                        details["response_size"] = len(response.content)
            self.monitor.finish(state, status, duration, error=error, details=details)
