"""In-process endpoint aggregates: every request, sampled or not, lands here.

The hot path (:meth:`EndpointAggregates.record`) appends one tuple to a deque
(atomic under the GIL, so no lock) and nothing else: no I/O, no logging.
The tuples are folded into the table (key, histogram bucket, sums) by
:meth:`drain` on the sender thread. If drains stop or fall behind, the
recording thread folds a chunk itself once more than ``MAX_PENDING`` requests
are waiting, so memory stays bounded and no request is ever dropped.
:meth:`drain` swaps the table out and turns it into the metric points of
``POST /api/v1/performance/metrics``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from math import log as _log
from typing import Any

from .histogram import _LOG_GROWTH, _LOG_MIN, MAX_BUCKET, MIN_DURATION

_STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

# About 130 bytes a pending request: 10,000 is ~1.3 MB, and covers
# 1,000 requests/s between two drains at the default 10 s metrics interval.
MAX_PENDING = 10_000
# What a recording thread folds once the bound is passed: small enough that
# the request paying for it is not held up long, large enough to amortise
# taking the lock.
FOLD_CHUNK = 256
#: Distinct exception types counted per endpoint and interval; more are summed as OTHER.
MAX_EXCEPTION_TYPES = 20
OTHER_EXCEPTIONS = "[other]"


def status_class(status: int) -> str:
    return _STATUS_CLASSES[status // 100] if 100 <= status < 600 else "5xx"


class EndpointAggregates:
    """Count, errors, sum/min/max, a log-scale histogram and exceptions per type, per endpoint key.

    A request is an error when it raised (``exception`` names the type) or
    its status is 5xx.
    """

    def __init__(self, app_version: str | None = None) -> None:
        self.app_version = app_version or "unknown"
        self._lock = threading.Lock()
        # (route, method, status, duration, exception type or None), in arrival order
        self._pending: deque[tuple[str, str, int, float, str | None]] = deque()
        # (route, method, status class) -> [count, errors, sum, min, max, {bucket: n},
        #                                   {exception type: n} or None]
        self._table: dict[tuple[str, str, str], list[Any]] = {}
        self._interval_start = time.time()

    def record(
        self, route: str, method: str, status: int, duration: float, exception: str | None
    ) -> None:
        pending = self._pending
        pending.append((route, method, status, duration, exception))
        if len(pending) > MAX_PENDING:
            with self._lock:
                self._fold_locked(FOLD_CHUNK)

    def _fold_locked(self, limit: int | None = None) -> None:
        """Move up to ``limit`` pending requests (all if None) into the table; lock held."""
        pending = self._pending
        # Only folders pop, and they hold the lock: the deque cannot shrink under
        # us, and what other threads append meanwhile is left for the next fold.
        n = len(pending) if limit is None else min(limit, len(pending))
        popleft = pending.popleft
        table = self._table
        for _ in range(n):
            route, method, status, duration, exception = popleft()
            key = (
                route,
                method,
                _STATUS_CLASSES[status // 100] if 100 <= status < 600 else "5xx",
            )
            # bucket_index, inlined: this runs for every request.
            if duration <= MIN_DURATION:
                bucket = 0
            else:
                bucket = int((_log(duration) - _LOG_MIN) / _LOG_GROWTH)
                if bucket > MAX_BUCKET:
                    bucket = MAX_BUCKET
            failed = 1 if exception is not None or status >= 500 else 0
            entry = table.get(key)
            if entry is None:
                entry = table[key] = [1, failed, duration, duration, duration, {bucket: 1}, None]
                if exception is not None:
                    entry[6] = {exception: 1}
                continue
            entry[0] += 1
            entry[1] += failed
            entry[2] += duration
            if duration < entry[3]:
                entry[3] = duration
            if duration > entry[4]:
                entry[4] = duration
            histogram = entry[5]
            histogram[bucket] = histogram.get(bucket, 0) + 1
            if exception is not None:
                _count_exception(entry, exception)

    def drain(self) -> list[dict[str, Any]]:
        """Take the points accumulated since the last drain (and reset)."""
        now = time.time()
        with self._lock:
            self._fold_locked()
            table, self._table = self._table, {}
            start, self._interval_start = self._interval_start, now
        points = [
            {
                "route": route,
                "method": method,
                "status_class": klass,
                "app_version": self.app_version,
                "interval_start": start,
                "interval_end": now,
                "count": count,
                "errors": errors,
                "duration_sum": total,
                "duration_min": low,
                "duration_max": high,
                "histogram": {str(k): v for k, v in histogram.items()},
                **({"exceptions": exceptions} if exceptions else {}),
            }
            for (route, method, klass), (
                count,
                errors,
                total,
                low,
                high,
                histogram,
                exceptions,
            ) in table.items()
        ]
        return points

    def reset(self) -> None:
        """Forget everything (used in a forked child, whose parent reports its own).

        The lock is replaced, not taken: a parent thread that was folding at
        the moment of the fork may have left the old one held in the child.
        """
        self._lock = threading.Lock()
        self._pending = deque()
        self._table = {}
        self._interval_start = time.time()


def _count_exception(entry: list[Any], exception: str) -> None:
    counts = entry[6]
    if counts is None:
        entry[6] = {exception: 1}
    elif exception in counts:
        counts[exception] += 1
    elif len(counts) < MAX_EXCEPTION_TYPES:
        counts[exception] = 1
    else:
        counts[OTHER_EXCEPTIONS] = counts.get(OTHER_EXCEPTIONS, 0) + 1
