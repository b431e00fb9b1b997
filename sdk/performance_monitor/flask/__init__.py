"""Flask integration: :class:`~performance_monitor.flask.middleware.PerformanceMiddleware`."""

from __future__ import annotations

from .middleware import PerformanceMiddleware, PerformanceWSGIWrapper

__all__ = ["PerformanceMiddleware", "PerformanceWSGIWrapper"]
