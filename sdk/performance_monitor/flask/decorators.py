"""``@monitor_performance``: per-view options on top of the middleware."""

from __future__ import annotations

from ..core.view_options import monitor_function as _monitor_function

monitor_performance = _monitor_function
__all__ = ["monitor_performance"]
