from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from performance_monitor.core import histogram


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(Fraction(str(q)) / 100 * len(ordered))) - 1]


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_are_within_the_stated_bound(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(-4, 1.5) for _ in range(5000)]
    buckets: dict[int, int] = {}
    for value in values:
        index = histogram.bucket_index(value)
        buckets[index] = buckets.get(index, 0) + 1
    for q in (1, 25, 50, 90, 95, 99, 99.9):
        estimate = histogram.percentile(buckets, q, lowest=min(values), highest=max(values))
        exact = _exact(values, q)
        assert estimate is not None
        assert abs(estimate - exact) / exact <= histogram.RELATIVE_ERROR + 1e-12
    assert histogram.percentile(buckets, 100, lowest=min(values), highest=max(values)) == max(
        values
    )
    assert histogram.percentile(buckets, 0, lowest=min(values), highest=max(values)) == min(values)


def test_bucket_edges() -> None:
    assert histogram.bucket_index(0.0) == 0
    assert histogram.bucket_index(1e-9) == 0
    assert histogram.bucket_index(10**9) == histogram.MAX_BUCKET
    for value in (2e-6, 0.001, 0.25, 3.0, 120.0):
        low, high = histogram.bucket_bounds(histogram.bucket_index(value))
        assert low <= value < high * (1 + 1e-12)
    assert round(histogram.RELATIVE_ERROR, 4) == 0.0443


def test_merge_and_empty() -> None:
    assert histogram.merge([{"3": 2}, {3: 1, 4: 5}]) == {3: 3, 4: 5}
    assert histogram.percentile({}, 50) is None
    with pytest.raises(ValueError):
        histogram.percentile({1: 1}, 101)
