"""SQL metrics for SQLAlchemy (Flask/FastAPI apps): ``instrument_engine(engine)``.

Listens to the engine's cursor events; for a sampled request it adds each
statement's count and time (and the slow ones) to the request's record, the
time of fetching its rows included (the execution context's DB-API cursor
is wrapped, see ``core/rows.py``). Outside a sampled request the listeners
return at once.
"""

from __future__ import annotations

import time
from typing import Any

from .core.request import current_request
from .core.rows import timed_rows
from .utils.logger import capture_internal_exceptions

_START_KEY = "performance_monitor_query_start"


def _before(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if current_request() is not None:
        conn.info.setdefault(_START_KEY, []).append(time.perf_counter())


def _after(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    state = current_request()
    if state is None:
        return
    starts = conn.info.get(_START_KEY)
    if not starts:
        return
    with capture_internal_exceptions():
        execution = state.add_query(statement, time.perf_counter() - starts.pop())
        if context is not None and not executemany:
            # The result reads its rows from the context's cursor, after this event.
            context.cursor = timed_rows(context.cursor, state, execution)


def _error(exception_context: Any) -> None:
    starts = (
        exception_context.connection.info.get(_START_KEY) if exception_context.connection else None
    )
    if starts:
        starts.pop()


def instrument_engine(engine: Any) -> Any:
    """Add query metrics to sampled requests for ``engine`` (sync or ``AsyncEngine``); returns it."""
    from sqlalchemy import event

    target = getattr(engine, "sync_engine", engine)
    if getattr(target, "_performance_monitor_instrumented", False):
        return engine
    event.listen(target, "before_cursor_execute", _before)
    event.listen(target, "after_cursor_execute", _after)
    event.listen(target, "handle_error", _error)
    target._performance_monitor_instrumented = True
    return engine


__all__ = ["instrument_engine"]
