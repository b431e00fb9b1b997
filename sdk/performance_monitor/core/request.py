"""Per-request state, reachable from anywhere in the request through a context variable.

Framework integrations create a :class:`RequestState`; SQL, cache and template
hooks find it with :func:`current_request` and add to its counters. Hooks are
no-ops when there is no state or the request is not sampled.
"""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any

from pyinstrument.session import Session

from .schedstat import thread_waits
from .statements import add_statement

if TYPE_CHECKING:
    from .profiler import RequestProfiler

_current: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "performance_monitor_request", default=None
)

MAX_SLOW_QUERIES = 20
MAX_STATEMENT_LENGTH = 1000


class RequestState:
    __slots__ = (
        "method",
        "path",
        "route",
        "start",
        "start_wall",
        "start_cpu",
        "start_waits",
        "sampled",
        "profiler",
        "thread_sessions",
        "query_count",
        "query_time",
        "slow_queries",
        "statements",
        "cache_hits",
        "cache_misses",
        "cache_time",
        "template_time",
        "template_depth",
        "tags",
        "track_sql",
        "track_memory",
        "slow_query_threshold",
        "memory_start",
        "memory_low",
        "memory_high",
        "memory_peak_at_start",
        "memory_overlapped",
        "thread_cpu",
        "thread_run_queue",
        "thread_switches",
        "extra",
    )

    def __init__(self, method: str, path: str, sampled: bool) -> None:
        self.method = method
        self.path = path
        self.route: str | None = None
        self.start = time.perf_counter()
        self.sampled = sampled
        self.profiler: RequestProfiler | None = None
        self.track_sql = True
        self.track_memory = False
        if sampled:
            self.start_wall = time.time()
            self.start_cpu = time.thread_time()
            self.start_waits = thread_waits()
            self.thread_sessions: list[Session] = []
            self.query_count = 0
            self.query_time = 0.0
            self.slow_queries: list[dict[str, Any]] = []
            # normalized statement -> [count, total, max, call site] (core/statements.py)
            self.statements: dict[str, list[Any]] = {}
            self.cache_hits = 0
            self.cache_misses = 0
            self.cache_time = 0.0
            self.template_time = 0.0
            self.template_depth = 0
            self.tags: dict[str, str] = {}
            self.memory_start: int | None = None
            self.memory_low = 0
            self.memory_high = 0
            self.memory_peak_at_start = 0
            self.memory_overlapped = False
            self.thread_cpu = 0.0
            self.thread_run_queue = 0.0
            self.thread_switches = 0
            self.slow_query_threshold = 0.1
            self.extra: dict[str, Any] = {}

    def add_query(self, statement: str, duration: float) -> Execution | None:
        """Count one statement's execution; its rows' fetching is added to the result."""
        if not self.track_sql:
            return None
        self.query_count += 1
        self.query_time += duration
        task = self.profiler.task if self.profiler is not None else None
        execution = Execution(statement, add_statement(self.statements, statement, duration, task))
        execution.duration = duration
        if duration >= self.slow_query_threshold:
            self._note_slow(execution)
        return execution

    def add_fetch(self, execution: Execution, duration: float) -> None:
        """Time spent fetching ``execution``'s rows: part of its statement's time."""
        self.query_time += duration
        execution.duration += duration
        entry = execution.entry
        entry[1] += duration
        if execution.duration > entry[2]:
            entry[2] = execution.duration
        # called once per fetched row by some drivers: no call unless it is or becomes slow
        if execution.slow is not None or execution.duration >= self.slow_query_threshold:
            self._note_slow(execution)

    def _note_slow(self, execution: Execution) -> None:
        if execution.slow is not None:
            execution.slow["duration"] = execution.duration
        elif (
            execution.duration >= self.slow_query_threshold
            and len(self.slow_queries) < MAX_SLOW_QUERIES
        ):
            execution.slow = {
                "statement": execution.statement[:MAX_STATEMENT_LENGTH],
                "duration": execution.duration,
            }
            self.slow_queries.append(execution.slow)

    def add_cache(self, hit: bool | None, duration: float) -> None:
        if hit is True:
            self.cache_hits += 1
        elif hit is False:
            self.cache_misses += 1
        self.cache_time += duration


class Execution:
    """One execution of a statement: its time so far, its statement's entry, its slow-query item."""

    __slots__ = ("statement", "entry", "duration", "slow")

    def __init__(self, statement: str, entry: list[Any]) -> None:
        self.statement = statement
        self.entry = entry
        self.duration = 0.0
        self.slow: dict[str, Any] | None = None


def current_request() -> RequestState | None:
    """The sampled request being handled in this context, if any."""
    state = _current.get()
    return state if state is not None and state.sampled else None


#: The sampled request of this context, or None: the bound ``ContextVar.get``, one C call
#: (only sampled requests are published), for hooks that run on every statement.
current_sampled = _current.get


def current_state() -> RequestState | None:
    """The sampled request being handled in this context (unsampled ones are not published)."""
    return _current.get()


def set_current(state: RequestState | None) -> contextvars.Token[RequestState | None]:
    return _current.set(state)


def reset_current(token: contextvars.Token[RequestState | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:
        # Reset from another context (a generator finished elsewhere): just clear.
        _current.set(None)
