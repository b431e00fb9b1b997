"""Per-view options shared by ``@monitor_performance`` (Flask) and ``@monitor_view`` (Django).

The decorators refine what the framework middleware records for the request
that runs the view: SQL tracking on or off, memory tracking, custom tags. On a
request the middleware does not monitor they only call the view.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..utils.logger import capture_internal_exceptions
from .memory import start_memory
from .request import current_state

F = TypeVar("F", bound=Callable[..., Any])


def _apply(track_sql: bool | None, track_memory: bool | None, tags: Mapping[str, Any]) -> None:
    state = current_state()
    if state is None:
        return
    if not state.sampled:
        return
    if track_sql is not None:
        state.track_sql = track_sql
    if track_memory:
        state.track_memory = True
        start_memory(state)
    state.tags.update({str(k): str(v) for k, v in tags.items()})


def monitor_function(
    func: Callable[..., Any] | None = None,
    *,
    track_sql: bool | None = None,
    track_memory: bool | None = None,
    custom_tags: Mapping[str, Any] | None = None,
) -> Any:
    """Decorate a view: ``@monitor_performance(track_sql=True, track_memory=True)``."""
    tags = dict(custom_tags or {})

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with capture_internal_exceptions():
                    _apply(track_sql, track_memory, tags)
                return await view(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with capture_internal_exceptions():
                _apply(track_sql, track_memory, tags)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
