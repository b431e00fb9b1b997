"""Per-request memory figures from tracemalloc, shared by overlapping requests.

tracemalloc is process-wide, so requests that overlap share it: it is started
when the first tracked request begins (unless something else already runs
it), stopped when the last one we started it for ends, and its peak is reset
only when no other tracked request is in flight.

What a request reports, in MB:

- A request that ran alone (no other tracked request began or ended while it
  ran) gets exact figures relative to the traced memory when it began:
  ``memory_delta`` is the change by its end (negative if it freed memory),
  ``peak_memory`` the highest traced memory while it ran minus its start
  (tracemalloc's own peak, reset when it began).
- A request that overlapped others shares the process-wide counters with
  them, so its figures are an approximation. They are taken relative to the
  lowest traced memory observed while it ran (another request freeing memory
  must not make this one look negative): ``memory_delta`` is its end minus
  that low point, never negative; ``peak_memory`` the larger of the highest
  value observed after the low point minus it and, when tracemalloc's peak
  rose while the request ran, that peak minus the request's start (the
  process's growth during its lifetime: an upper bound on its own, as other
  requests' allocations count too). Observations are its own start and end
  and the begin and end of every other tracked request in between; the peak
  is never reset while another tracked request runs.
"""

from __future__ import annotations

import threading
import tracemalloc
from typing import TYPE_CHECKING, Any

from .allocations import (
    ALLOCATION_MIN_BYTES,
    TRACE_FRAMES,
    allocation_sites,
    start_snapshot,
    traces,
)

if TYPE_CHECKING:
    from .request import RequestState

_lock = threading.Lock()
_in_flight: list[RequestState] = []
_started_here = False
#: Traced bytes held by the SDK's own start figures (see allocations.py): not the app's.
_snapshot_bytes = 0


def _traced() -> tuple[int, int]:
    """tracemalloc's (current, peak) less what our own start snapshots hold."""
    current, peak = tracemalloc.get_traced_memory()
    return current - _snapshot_bytes, max(0, peak - _snapshot_bytes)


def _observe(current: int) -> None:
    for other in _in_flight:
        if current < other.memory_low:
            other.memory_low = other.memory_high = current
        elif current > other.memory_high:
            other.memory_high = current


def start_memory(state: RequestState) -> None:
    """Start measuring memory for a sampled request (tracemalloc is started only on demand)."""
    global _started_here, _snapshot_bytes
    if state.memory_start is not None:
        return
    with _lock:
        fresh = False
        if not _in_flight:
            if not tracemalloc.is_tracing():
                tracemalloc.start(TRACE_FRAMES)
                _started_here = fresh = True
            tracemalloc.reset_peak()
        # The start's figures per line are themselves traced memory, held until this
        # request ends: they would count in every overlapping request's figures.
        # Their size is measured here and left out of every reading.
        untaken = tracemalloc.get_traced_memory()[0]
        snapshot = start_snapshot(fresh)
        if snapshot is not None:
            held = max(0, tracemalloc.get_traced_memory()[0] - untaken)
            state.extra["allocations_before"] = snapshot
            state.extra["allocations_before_bytes"] = held
            _snapshot_bytes += held
        current, peak = _traced()
        _observe(current)
        state.memory_start = state.memory_low = state.memory_high = current
        state.memory_peak_at_start = peak
        state.memory_overlapped = bool(_in_flight)
        for other in _in_flight:
            other.memory_overlapped = True
        _in_flight.append(state)


def finish_memory(state: RequestState) -> dict[str, Any] | None:
    """The request's ``memory_usage`` figures; stops tracemalloc after the last request."""
    global _started_here, _snapshot_bytes
    start = state.memory_start
    if start is None:
        return None
    state.memory_start = None
    with _lock:
        if state not in _in_flight:
            return None
        tracing = tracemalloc.is_tracing()
        current, peak = _traced() if tracing else (start, 0)
        _observe(current)  # this request's own end included
        before = state.extra.pop("allocations_before", None)
        _snapshot_bytes -= state.extra.pop("allocations_before_bytes", 0)
        # Reading the traces costs in proportion to what is traced: only worth it
        # for a request that allocated enough to be looked at.
        grown = max(current, peak) - start >= ALLOCATION_MIN_BYTES
        raw = traces() if tracing and grown else None
        _in_flight.remove(state)
        if not _in_flight and _started_here:
            tracemalloc.stop()
            _snapshot_bytes = 0
            _started_here = False
    # Grouped once tracing may have stopped: the grouping's own objects then cost
    # no tracing (they are not the request's either way).
    sites = allocation_sites(raw, before) if raw is not None else []
    base = state.memory_low if state.memory_overlapped else start
    delta = current - base
    high = state.memory_high - base
    if peak > state.memory_peak_at_start:
        high = max(high, peak - start)  # the process's peak was reached while this request ran
    return {
        "peak_memory": max(high, delta, 0) / 1e6,
        "memory_delta": delta / 1e6,
        "allocations": sites,
    }


def tracked_requests() -> int:
    """How many requests are measuring memory right now."""
    return len(_in_flight)
