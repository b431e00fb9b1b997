"""Django integration: add ``'performance_monitor.django.PerformanceMiddleware'`` to MIDDLEWARE.

Configured by the ``PERFORMANCE_MONITOR`` settings dict (PROJECT_KEY,
API_ENDPOINT, ENABLED, SAMPLING_RATE, EXCLUDE_PATHS, INCLUDE_PATTERNS,
TRACK_SQL, TRACK_CACHE, TRACK_TEMPLATES, ASYNC_SEND and any other Config key
in upper case).
"""

from __future__ import annotations

from .middleware import PerformanceMiddleware

__all__ = ["PerformanceMiddleware"]
