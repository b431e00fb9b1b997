"""``@monitor_view(track_sql=True, custom_tags={...})`` for Django views."""

from __future__ import annotations

from ..core.view_options import monitor_function as _monitor_function

monitor_view = _monitor_function
__all__ = ["monitor_view"]
