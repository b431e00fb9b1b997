"""SQL metrics for SQLAlchemy (Flask/FastAPI apps): ``instrument_engine(engine)``.

For a sampled request each statement's count and time (and the slow ones)
go into the request's record, the time of fetching its rows included (the
execution context's DB-API cursor is wrapped, see ``core/rows.py``).

The engine's dialect executes every statement through ``do_execute``,
``do_executemany`` or ``do_execute_no_params``; ``instrument_engine`` wraps
those three methods of that dialect instance. Outside a sampled request a
wrapper is one context-variable read and the original call. Engine events
(``before/after_cursor_execute``) would do the same work but turn on
SQLAlchemy's event machinery for every connection, transaction and
execution of the engine — sampled or not (measured with
``benchmarks/sdk_instructions.py``; see benchmarks/README.md).

A statement that a ``do_execute`` *event* listener executes itself (one
that returns True, so the dialect's method is never called) is not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from .core.request import RequestState, current_sampled
from .core.rows import timed_rows
from .utils.logger import internal_error

_INSTRUMENTED = "_performance_monitor_instrumented"


def _count(state: RequestState, statement: str, duration: float, context: Any, rows: bool) -> None:
    try:
        execution = state.add_query(statement, duration)
        if rows and context is not None and not context.executemany:
            # The result reads its rows from the context's cursor, after this returns.
            context.cursor = timed_rows(context.cursor, state, execution)
    except Exception as error:
        internal_error(error)


def _with_parameters(method: Callable[..., None], rows: bool) -> Callable[..., None]:
    """``do_execute``/``do_executemany``, counting the statement in a sampled request."""

    def execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        state = current_sampled()
        if state is None:
            return method(cursor, statement, parameters, context)
        start = perf_counter()
        method(cursor, statement, parameters, context)
        _count(state, statement, perf_counter() - start, context, rows)
        return None

    execute.__wrapped__ = method  # type: ignore[attr-defined]
    return execute


def _without_parameters(method: Callable[..., None]) -> Callable[..., None]:
    """``do_execute_no_params``, counting the statement in a sampled request."""

    def execute(cursor: Any, statement: str, context: Any = None) -> None:
        state = current_sampled()
        if state is None:
            return method(cursor, statement, context)
        start = perf_counter()
        method(cursor, statement, context)
        _count(state, statement, perf_counter() - start, context, True)
        return None

    execute.__wrapped__ = method  # type: ignore[attr-defined]
    return execute


def instrument_engine(engine: Any) -> Any:
    """Add query metrics to sampled requests for ``engine`` (sync or ``AsyncEngine``); returns it."""
    dialect = getattr(engine, "sync_engine", engine).dialect
    if dialect.__dict__.get(_INSTRUMENTED):
        return engine
    dialect.do_execute = _with_parameters(dialect.do_execute, rows=True)
    dialect.do_executemany = _with_parameters(dialect.do_executemany, rows=False)
    dialect.do_execute_no_params = _without_parameters(dialect.do_execute_no_params)
    setattr(dialect, _INSTRUMENTED, True)
    return engine


__all__ = ["instrument_engine"]
