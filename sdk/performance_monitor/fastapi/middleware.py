"""FastAPI/Starlette: a pure ASGI middleware taking the SPEC §5 keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._asgi_common import ASGIApp, MonitoredASGIApp
from ..core.monitor import Monitor
from ..core.record import installed_version
from ..utils.config import Config


class PerformanceMiddleware(MonitoredASGIApp):
    """``app.add_middleware(PerformanceMiddleware, project_key=..., api_endpoint=..., ...)``.

    Any :class:`~performance_monitor.utils.config.Config` key is accepted as a
    keyword argument (``exclude_paths`` is an alias of ``excluded_paths``), or
    pass a ready ``config=Config(...)``. It is the monitored ASGI app itself
    (no extra layer per request); a disabled monitor passes every request
    straight through.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | Mapping[str, Any] | None = None,
        track_request_body: bool | None = None,
        track_response_body: bool | None = None,
        **settings: Any,
    ) -> None:
        if isinstance(config, Config):
            resolved = config
        else:
            values = {**(config or {}), **settings}
            if track_request_body is not None:
                values["track_request_body"] = track_request_body
            if track_response_body is not None:
                values["track_response_body"] = track_response_body
            resolved = Config(values)
        self.config = resolved
        monitor = Monitor(
            resolved,
            framework="fastapi",
            framework_version=installed_version("fastapi", "starlette"),
            async_mode="enabled",
        )
        super().__init__(
            app,
            monitor,
            track_request_body=resolved.track_request_body,
            track_response_body=resolved.track_response_body,
        )
