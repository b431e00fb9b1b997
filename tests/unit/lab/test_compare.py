from __future__ import annotations

import math
import random
from datetime import datetime, timezone

import pytest
from performance_monitor.core import histogram

from pystrument_lab.compare import compare_endpoint_docs, mann_whitney_greater


def _hist(values: list[float]) -> dict[int, int]:
    out: dict[int, int] = {}
    for value in values:
        index = histogram.bucket_index(value)
        out[index] = out.get(index, 0) + 1
    return out


def _doc(route: str, values: list[float]) -> dict:
    return {
        "route": route,
        "method": "GET",
        "bucket_start": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "count": len(values),
        "errors": 0,
        "duration_sum": sum(values),
        "duration_min": min(values),
        "duration_max": max(values),
        "histogram": {str(k): v for k, v in _hist(values).items()},
    }


def test_mann_whitney_detects_a_shift_and_not_noise() -> None:
    rng = random.Random(1)
    a = [rng.lognormvariate(math.log(0.05), 0.3) for _ in range(300)]
    same = [rng.lognormvariate(math.log(0.05), 0.3) for _ in range(300)]
    slower = [rng.lognormvariate(math.log(0.07), 0.3) for _ in range(300)]
    assert mann_whitney_greater(_hist(a), _hist(slower)) < 1e-6
    assert mann_whitney_greater(_hist(a), _hist(same)) > 0.01
    assert (
        mann_whitney_greater(_hist(slower), _hist(a)) > 0.99
    )  # one-sided: faster is not a regression
    assert mann_whitney_greater({}, _hist(a)) == 1.0


def test_identical_buckets_are_all_ties() -> None:
    assert mann_whitney_greater({10: 50}, {10: 50}) >= 0.5


def test_compare_flags_only_real_regressions() -> None:
    rng = random.Random(2)
    a = [
        _doc("/search", [rng.uniform(0.05, 0.06) for _ in range(100)]),
        _doc("/users", [rng.uniform(0.01, 0.02) for _ in range(100)]),
        _doc("/rare", [0.01, 0.01]),
    ]
    b = [
        _doc("/search", [rng.uniform(0.10, 0.12) for _ in range(100)]),
        _doc("/users", [rng.uniform(0.01, 0.02) for _ in range(100)]),
        _doc("/rare", [1.0, 1.0]),
    ]
    rows = compare_endpoint_docs(a, b)
    assert rows[0]["route"] == "/search" and rows[0]["regression"] is True
    assert rows[0]["p50_change"] == pytest.approx(1.0, abs=0.2)  # each p50 within 4.4 %
    flags = {row["route"]: row["regression"] for row in rows}
    assert flags == {"/search": True, "/users": False, "/rare": False}  # /rare has too few requests
