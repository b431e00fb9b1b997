"""Flask: ``PerformanceMiddleware(app, config)`` / ``init_app``, and the zero-code WSGI wrapper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._wsgi_common import EXCEPTION_KEY, MonitoredWSGIApp, WSGIApp
from ..core.monitor import Monitor
from ..core.record import installed_version
from ..utils.config import Config
from ..utils.logger import capture_internal_exceptions


def _config(config: Config | Mapping[str, Any] | None) -> Config:
    return config if isinstance(config, Config) else Config(config)


class PerformanceMiddleware:
    """Monitors a Flask app: ``PerformanceMiddleware(app, config)`` or ``init_app(app)`` later."""

    def __init__(self, app: Any = None, config: Config | Mapping[str, Any] | None = None) -> None:
        self.config = _config(config)
        self.monitor: Monitor | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        monitor = Monitor(
            self.config, framework="flask", framework_version=installed_version("flask")
        )
        self.monitor = monitor
        app.extensions["performance_monitor"] = self
        if not monitor.active:
            return
        app.wsgi_app = MonitoredWSGIApp(app.wsgi_app, monitor)
        note_flask_exceptions(app)


def note_flask_exceptions(app: Any) -> None:
    """Flask turns an unhandled exception into a 500 inside ``wsgi_app``: note it for the count."""
    from flask import got_request_exception

    got_request_exception.connect(_note_exception, app, weak=False)


def _note_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    with capture_internal_exceptions():
        from flask import request

        request.environ[EXCEPTION_KEY] = exception


class PerformanceWSGIWrapper:
    """Wraps any WSGI app without code changes to it: ``app = PerformanceWSGIWrapper(app, config)``.

    For a Flask (Werkzeug) app the route template comes from the matched URL
    rule; for other WSGI apps the route is the path (pass
    ``route_resolver(environ)`` to do better).
    """

    def __init__(
        self,
        app: WSGIApp,
        config: Config | Mapping[str, Any] | None = None,
        *,
        route_resolver: Any = None,
    ) -> None:
        self.app = app
        flask_app: Any = app if hasattr(app, "url_map") and hasattr(app, "wsgi_app") else None
        self.monitor = Monitor(
            _config(config),
            framework="flask" if flask_app is not None else "wsgi",
            framework_version=installed_version("flask") if flask_app is not None else None,
        )
        if flask_app is not None:
            # The app is watched: the launcher's import hook must not add a second monitor.
            flask_app.extensions.setdefault("performance_monitor", self)
        if flask_app is None and route_resolver is None:
            route_resolver = _path_route
        if flask_app is not None and self.monitor.active:
            note_flask_exceptions(flask_app)
        self._wrapped = (
            MonitoredWSGIApp(app, self.monitor, route_resolver) if self.monitor.active else app
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._wrapped(environ, start_response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def _path_route(environ: dict[str, Any]) -> str:
    return str(environ.get("PATH_INFO") or "/")
