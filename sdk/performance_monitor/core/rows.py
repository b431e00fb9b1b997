"""A statement's time includes fetching its rows: a DB-API cursor that times its fetches.

sqlite3 does a query's work as its rows are read: ``execute`` steps to the
first row and every fetch steps on, so an unindexed scan that matches few
rows spends most of its time in ``fetchall`` (measured: 30 of 335 ms were
seen when only ``execute`` was timed). Server-side cursors of other drivers
do the same, and every driver builds its Python rows as they are fetched.
Django's ``execute_wrapper`` and SQLAlchemy's cursor events bracket
``execute`` only, so after a sampled request's statement that returns rows
(its cursor has a ``description``) the hook puts :class:`TimedRows` in place
of the DB-API cursor: its ``fetchone``, ``fetchmany``, ``fetchall`` and
iteration add their time to that execution (the statement's total and max,
the request's query time, its slow queries). Everything else is the
cursor's own. Its frames are hidden from the call tree (``__tracebackhide__``,
which pyinstrument honours): the driver's fetch stays right below the
library that called it, where the analysis counts it as database time. A
later statement on the same cursor takes it over; a fetch
outside the request that ran the statement is passed straight through
(the sampled request of the fetching context: only sampled requests are
published in it).
Rows fetched some other way than through the cursor (a driver's own bulk
API on the raw connection) are not timed.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ..utils.logger import internal_error
from .request import Execution, RequestState, current_sampled

_OWN = ("_pm_cursor", "_pm_state", "_pm_execution")


class TimedRows:
    """``cursor``, with the time of fetching its rows added to ``execution``."""

    __slots__ = _OWN

    def __init__(self, cursor: Any, state: RequestState, execution: Execution | None) -> None:
        object.__setattr__(self, "_pm_cursor", cursor)
        object.__setattr__(self, "_pm_state", state)
        object.__setattr__(self, "_pm_execution", execution)

    def bind(self, state: RequestState, execution: Execution | None) -> None:
        object.__setattr__(self, "_pm_state", state)
        object.__setattr__(self, "_pm_execution", execution)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pm_cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pm_cursor, name, value)

    # Each fetch is timed in its own method, without a helper call or a context
    # manager: a sampled request runs them under the profiler, once per row for
    # a driver read row by row, where every Python call costs a profiler event
    # (benchmarks/README.md, "SDK hot path").

    def fetchone(self) -> Any:
        __tracebackhide__ = True
        execution = self._pm_execution
        if execution is None or current_sampled() is not self._pm_state:
            return self._pm_cursor.fetchone()
        start = perf_counter()
        try:
            return self._pm_cursor.fetchone()
        finally:
            self._add(execution, perf_counter() - start)

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        execution = self._pm_execution
        if execution is None or current_sampled() is not self._pm_state:
            return self._pm_cursor.fetchmany(*args, **kwargs)
        start = perf_counter()
        try:
            return self._pm_cursor.fetchmany(*args, **kwargs)
        finally:
            self._add(execution, perf_counter() - start)

    def fetchall(self) -> Any:
        __tracebackhide__ = True
        execution = self._pm_execution
        if execution is None or current_sampled() is not self._pm_state:
            return self._pm_cursor.fetchall()
        start = perf_counter()
        try:
            return self._pm_cursor.fetchall()
        finally:
            self._add(execution, perf_counter() - start)

    def __iter__(self) -> TimedRows:
        return self

    def __next__(self) -> Any:
        __tracebackhide__ = True
        execution = self._pm_execution
        if execution is None or current_sampled() is not self._pm_state:
            return next(self._pm_cursor)
        start = perf_counter()
        try:
            return next(self._pm_cursor)
        finally:
            self._add(execution, perf_counter() - start)

    def _add(self, execution: Execution, duration: float) -> None:
        __tracebackhide__ = True
        try:
            self._pm_state.add_fetch(execution, duration)
        except Exception as error:
            internal_error(error)


def timed_rows(cursor: Any, state: RequestState, execution: Execution | None) -> Any:
    """The cursor to read ``execution``'s rows from: ``cursor`` itself when there are none."""
    if isinstance(cursor, TimedRows):
        cursor.bind(state, execution)
        return cursor
    if execution is None or getattr(cursor, "description", None) is None:
        return cursor
    return TimedRows(cursor, state, execution)
