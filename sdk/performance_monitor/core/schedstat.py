"""How long a thread waited for a CPU: Linux's per-thread scheduler statistics.

A request's wall time is its CPU time, the time it was blocked (I/O, locks,
sleeps) and the time it was ready to run but another process or thread held
the CPU. Only the second is the request's own waiting; telling it from the
third needs the run-queue delay, which Linux keeps per thread in
``/proc/thread-self/schedstat`` (second field, nanoseconds). Elsewhere the
reading is ``None`` and the record carries no ``run_queue_time``.
"""

from __future__ import annotations

import os
import threading

try:  # not on Windows; RUSAGE_THREAD is Linux's
    from resource import RUSAGE_THREAD, getrusage
except ImportError:  # pragma: no cover - other platforms
    RUSAGE_THREAD = getrusage = None  # type: ignore[assignment,misc]

_PATH = "/proc/thread-self/schedstat"
_local = threading.local()


class _Reader:
    """This thread's open statistics file, closed when the thread ends."""

    __slots__ = ("fd",)

    def __init__(self) -> None:
        try:
            self.fd = os.open(_PATH, os.O_RDONLY)
        except OSError:
            self.fd = -1

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)

    def read(self) -> float | None:
        if self.fd < 0:
            return None
        try:
            return int(os.pread(self.fd, 96, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None


def run_queue_seconds() -> float | None:
    """Seconds this thread has waited on a run queue since it started (None off Linux)."""
    reader = getattr(_local, "reader", None)
    if reader is None:
        reader = _local.reader = _Reader()
    return reader.read()


def thread_waits() -> tuple[float, int] | None:
    """(seconds waited on a run queue, voluntary context switches) of this thread so far."""
    run_queue = run_queue_seconds()
    if run_queue is None or getrusage is None:
        return None
    try:
        return run_queue, getrusage(RUSAGE_THREAD).ru_nvcsw
    except OSError:
        return None


def waits_since(start: tuple[float, int] | None) -> tuple[float, int] | None:
    """(run-queue seconds, voluntary switches) since ``start`` (a :func:`thread_waits`)."""
    if start is None:
        return None
    now = thread_waits()
    if now is None:
        return None
    return max(0.0, now[0] - start[0]), max(0, now[1] - start[1])
