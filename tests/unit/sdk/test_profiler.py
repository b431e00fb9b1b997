"""The request profiler's session spans the request: from its start to the clock's stop."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc

from performance_monitor.core.profiler import MAX_INTERVAL, RequestProfiler


def _spin(seconds: float) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pass


def _total(session: object) -> float:
    return sum(duration for _, duration in session.frame_records)  # type: ignore[attr-defined]


def test_time_after_the_last_sample_is_the_callers_own() -> None:
    # A 50 ms interval and 120 ms of work: two or three samples, then up to
    # 50 ms that pyinstrument (no sample at stop) would leave out of the session.
    profiler = RequestProfiler(interval=0.05, max_duration=10.0)
    assert profiler.start(caller_frame=sys._getframe())
    _spin(0.12)
    end = time.perf_counter()
    session = profiler.stop(end)
    assert session is not None
    assert abs(_total(session) - (end - profiler.started)) < 1e-9
    stack, tail = session.frame_records[-1]
    # The tail is billed where the caller started the profiler: this function.
    assert stack == list(session.start_call_stack)
    assert stack[-1].split("\x00", 1)[0] == "test_time_after_the_last_sample_is_the_callers_own"
    assert 0 < tail <= 0.05 + 0.01


def test_samples_after_the_request_clock_stopped_are_cut() -> None:
    # The request's clock stops at ``end``; 40 ms more of (SDK) work is sampled
    # before the profiler stops, and none of it is the request's.
    profiler = RequestProfiler(interval=0.001, max_duration=10.0)
    assert profiler.start(caller_frame=sys._getframe())
    _spin(0.03)
    end = time.perf_counter()
    _spin(0.04)
    session = profiler.stop(end)
    assert session is not None
    # Exactly the request's time: none of the 40 ms after ``end``. (No upper bound in
    # seconds: on a loaded machine the start itself can be preempted for longer.)
    assert abs(_total(session) - (end - profiler.started)) < 1e-9
    assert _total(session) >= 0.03


def test_truncated_session_gets_no_tail() -> None:
    profiler = RequestProfiler(interval=0.001, max_duration=0.01)
    assert profiler.start(caller_frame=sys._getframe())
    _spin(0.05)
    session = profiler.stop()
    assert session is not None and profiler.truncated
    assert _total(session) < 0.03


def _descend(depth: int, seconds: float) -> None:
    if depth:
        _descend(depth - 1, seconds)
    else:
        _spin(seconds)


def test_costly_samples_lengthen_the_interval() -> None:
    # 300 frames down under tracemalloc a sample costs milliseconds (a string per
    # frame, each allocation walking the whole stack): more than the interval.
    tracemalloc.start(1)
    try:
        profiler = RequestProfiler(interval=0.001, max_duration=10.0)
        assert profiler.start(caller_frame=sys._getframe())
        _descend(300, 0.3)
        end = time.perf_counter()
        session = profiler.stop(end)
    finally:
        tracemalloc.stop()
    assert session is not None
    assert 0.001 < profiler.interval <= MAX_INTERVAL
    # Time is conserved: the samples still sum to the request.
    assert abs(_total(session) - (end - profiler.started)) < 1e-9
    deepest = max(len(stack) for stack, _ in session.frame_records)
    assert deepest > 300


def test_cheap_samples_keep_the_interval() -> None:
    # A thread's own stack is a few frames: a sample costs microseconds.
    found: list[tuple[float, float, float]] = []

    def run() -> None:
        profiler = RequestProfiler(interval=0.001, max_duration=10.0)
        assert profiler.start(caller_frame=sys._getframe())
        _descend(5, 0.05)
        end = time.perf_counter()
        session = profiler.stop(end)
        assert session is not None
        found.append((profiler.interval, _total(session), end - profiler.started))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    [(interval, total, elapsed)] = found
    assert interval == 0.001
    assert abs(total - elapsed) < 1e-9
