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
outside the request that ran the statement is passed straight through.
Rows fetched some other way than through the cursor (a driver's own bulk
API on the raw connection) are not timed.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ..utils.logger import capture_internal_exceptions
from .request import Execution, RequestState, current_request

_OWN = ("_pm_cursor", "_pm_state", "_pm_execution")


class TimedRows:
    """``cursor``, with the time of fetching its rows added to ``execution``."""

    __slots__ = _OWN

    def __init__(self, cursor: Any, state: RequestState, execution: Execution | None) -> None:
        object.__setattr__(self, "_pm_cursor", cursor)
        self.bind(state, execution)

    def bind(self, state: RequestState, execution: Execution | None) -> None:
        object.__setattr__(self, "_pm_state", state)
        object.__setattr__(self, "_pm_execution", execution)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pm_cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pm_cursor, name, value)

    def _timed(self, fetch: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        execution: Execution | None = self._pm_execution
        state: RequestState = self._pm_state
        if execution is None or current_request() is not state:
            return fetch(*args, **kwargs)
        start = perf_counter()
        try:
            return fetch(*args, **kwargs)
        finally:
            with capture_internal_exceptions():
                state.add_fetch(execution, perf_counter() - start)

    def fetchone(self) -> Any:
        __tracebackhide__ = True
        return self._timed(self._pm_cursor.fetchone)

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return self._timed(self._pm_cursor.fetchmany, *args, **kwargs)

    def fetchall(self) -> Any:
        __tracebackhide__ = True
        return self._timed(self._pm_cursor.fetchall)

    def __iter__(self) -> TimedRows:
        return self

    def __next__(self) -> Any:
        __tracebackhide__ = True
        return self._timed(next, self._pm_cursor)


def timed_rows(cursor: Any, state: RequestState, execution: Execution | None) -> Any:
    """The cursor to read ``execution``'s rows from: ``cursor`` itself when there are none."""
    if isinstance(cursor, TimedRows):
        cursor.bind(state, execution)
        return cursor
    if execution is None or getattr(cursor, "description", None) is None:
        return cursor
    return TimedRows(cursor, state, execution)
