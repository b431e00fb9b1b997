from __future__ import annotations

import sys
import time

from performance_monitor.core.profiler import RequestProfiler


def _spin(seconds: float) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pass


def test_time_after_the_last_sample_is_the_callers_own() -> None:
    # A 50 ms interval and 120 ms of work: two or three samples, then up to
    # 50 ms that pyinstrument (no sample at stop) would leave out of the session.
    profiler = RequestProfiler(interval=0.05, max_duration=10.0)
    before = time.perf_counter()
    assert profiler.start(caller_frame=sys._getframe())
    _spin(0.12)
    session = profiler.stop()
    elapsed = time.perf_counter() - before
    assert session is not None
    total = sum(duration for _, duration in session.frame_records)
    # Samples are timed by pyinstrument's clock, the tail by ours: 1 % apart at most.
    assert 0.12 * 0.99 <= total <= elapsed
    stack, tail = session.frame_records[-1]
    # The tail is billed where the caller stopped: this function's own time.
    assert stack == list(session.start_call_stack)
    assert stack[-1].split("\x00", 1)[0] == "test_time_after_the_last_sample_is_the_callers_own"
    assert 0 < tail <= 0.05 + 0.01


def test_truncated_session_gets_no_tail() -> None:
    profiler = RequestProfiler(interval=0.001, max_duration=0.01)
    assert profiler.start(caller_frame=sys._getframe())
    _spin(0.05)
    session = profiler.stop()
    assert session is not None and profiler.truncated
    total = sum(duration for _, duration in session.frame_records)
    assert total < 0.03
