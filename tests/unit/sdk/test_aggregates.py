from __future__ import annotations

from performance_monitor.core.aggregates import EndpointAggregates, status_class
from performance_monitor.core.histogram import bucket_index, percentile


def test_status_classes() -> None:
    assert [status_class(s) for s in (101, 200, 204, 302, 404, 500, 599, 700)] == [
        "1xx",
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "5xx",
        "5xx",
    ]


def test_aggregates_fold_counts_errors_and_histogram() -> None:
    aggregates = EndpointAggregates("1.2")
    durations = [0.010, 0.020, 0.030, 0.5]
    for d in durations:
        aggregates.record("/users/<id>", "GET", 200, d, False)
    aggregates.record("/users/<id>", "GET", 500, 0.1, True)
    aggregates.record("/users/<id>", "POST", 201, 0.05, False)
    points = {(p["route"], p["method"], p["status_class"]): p for p in aggregates.drain()}
    ok = points[("/users/<id>", "GET", "2xx")]
    assert ok["count"] == 4 and ok["errors"] == 0
    assert ok["duration_min"] == 0.010 and ok["duration_max"] == 0.5
    assert abs(ok["duration_sum"] - sum(durations)) < 1e-12
    assert sum(ok["histogram"].values()) == 4
    assert ok["histogram"][str(bucket_index(0.5))] == 1
    assert ok["app_version"] == "1.2" and ok["interval_start"] <= ok["interval_end"]
    hist = {int(k): v for k, v in ok["histogram"].items()}
    assert abs(percentile(hist, 50) - 0.020) / 0.020 < 0.05
    assert points[("/users/<id>", "GET", "5xx")]["errors"] == 1
    assert points[("/users/<id>", "POST", "2xx")]["count"] == 1
    assert aggregates.drain() == []  # drained


def test_exception_counts_as_error_even_with_status() -> None:
    aggregates = EndpointAggregates(None)
    aggregates.record("/x", "GET", 200, 0.001, True)
    (point,) = aggregates.drain()
    assert point["errors"] == 1 and point["app_version"] == "unknown"
