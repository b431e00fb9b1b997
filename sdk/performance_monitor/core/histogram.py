"""Log-scale duration histogram shared by the SDK and the workbench.

The SDK folds every request's duration into a sparse histogram whose bucket
``i`` covers ``[MIN_DURATION * GROWTH**i, MIN_DURATION * GROWTH**(i+1))``
seconds (bucket 0 also holds everything shorter). The collector adds these
histograms up and the workbench reads percentiles back from them.

Error bound: a percentile read from the histogram is the geometric midpoint
of the bucket that holds the true rank, clamped to the observed min/max, so
it is within ``RELATIVE_ERROR`` (about 4.4 %) of a duration that really lies
at that rank.

This module is pure Python with no imports beyond the standard library so
that the collector and the SDK's hot path can both use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GROWTH = 2.0 ** (1.0 / 8.0)
MIN_DURATION = 1e-6
RELATIVE_ERROR = math.sqrt(GROWTH) - 1.0
_LOG_GROWTH = math.log(GROWTH)
_LOG_MIN = math.log(MIN_DURATION)
# 1 µs * GROWTH**350 is about 16 days: no request lasts longer.
MAX_BUCKET = 350


def bucket_index(seconds: float) -> int:
    """The bucket that holds a duration of ``seconds``."""
    if seconds <= MIN_DURATION:
        return 0
    index = int((math.log(seconds) - _LOG_MIN) / _LOG_GROWTH)
    return index if index < MAX_BUCKET else MAX_BUCKET


def bucket_bounds(index: int) -> tuple[float, float]:
    """Lower and upper edge, in seconds, of bucket ``index``."""
    return MIN_DURATION * GROWTH**index, MIN_DURATION * GROWTH ** (index + 1)


def bucket_value(index: int) -> float:
    """The representative duration of a bucket: its geometric midpoint."""
    return float(MIN_DURATION * GROWTH ** (index + 0.5))


def merge(histograms: Iterable[Mapping[str, int] | Mapping[int, int]]) -> dict[int, int]:
    """Add up sparse histograms (keys may be ints or the strings MongoDB stores)."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            index = int(key)
            total[index] = total.get(index, 0) + int(count)
    return total


def percentile(
    histogram: Mapping[int, int],
    q: float,
    *,
    lowest: float | None = None,
    highest: float | None = None,
) -> float | None:
    """The ``q``-th percentile (0–100) of the durations in ``histogram``.

    ``lowest``/``highest`` are the exact observed min and max; the estimate is
    clamped to them, which makes p0 and p100 exact. Returns None when the
    histogram is empty.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q!r}")
    count = sum(histogram.values())
    if count <= 0:
        return None
    # Nearest-rank definition: the smallest value with at least q% at or below it.
    # Rounded before ceil so float noise (7 / 100 * 100 == 7.000000000000001)
    # does not push a whole rank up by one.
    rank = max(1, math.ceil(round(q * count / 100.0, 9)))
    # The extreme ranks are known exactly when min and max were observed.
    if rank == 1 and lowest is not None:
        return lowest
    if rank == count and highest is not None:
        return highest
    seen = 0
    value = 0.0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            value = bucket_value(index)
            break
    if lowest is not None:
        value = max(value, lowest)
    if highest is not None:
        value = min(value, highest)
    return value
