from __future__ import annotations

import threading
from typing import Any

import pytest
from performance_monitor.core.aggregates import (
    FOLD_CHUNK,
    MAX_PENDING,
    EndpointAggregates,
    status_class,
)
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
        aggregates.record("/users/<id>", "GET", 200, d, None)
    aggregates.record("/users/<id>", "GET", 500, 0.1, "ValueError")
    aggregates.record("/users/<id>", "POST", 201, 0.05, None)
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
    aggregates.record("/x", "GET", 200, 0.001, "ValueError")
    (point,) = aggregates.drain()
    assert point["errors"] == 1 and point["app_version"] == "unknown"


def test_pending_requests_are_folded_on_the_recording_thread_past_the_bound() -> None:
    aggregates = EndpointAggregates("1.0")
    total = MAX_PENDING + 3 * FOLD_CHUNK + 7
    for i in range(total):
        aggregates.record("/x", "GET", 500 if i % 10 == 0 else 200, 0.001 * (1 + i % 5), None)
        assert len(aggregates._pending) <= MAX_PENDING  # no drain, yet bounded
    assert aggregates._table  # some were folded without a drain
    points = {p["status_class"]: p for p in aggregates.drain()}
    errors = len(range(0, total, 10))
    assert points["5xx"]["count"] == points["5xx"]["errors"] == errors
    assert points["2xx"]["count"] == total - errors
    assert sum(points["2xx"]["histogram"].values()) == total - errors
    assert points["2xx"]["duration_min"] == 0.001 and points["2xx"]["duration_max"] == 0.005
    assert aggregates.drain() == []


@pytest.mark.parametrize("draining", [True, False], ids=["drained", "folded-by-recorders"])
def test_concurrent_recording_keeps_the_count_exact(draining: bool) -> None:
    aggregates = EndpointAggregates("1.0")
    threads, per_thread = 8, MAX_PENDING // 2
    drained: list[dict[str, Any]] = []
    done = threading.Event()

    def drain_while_recording() -> None:
        while draining and not done.is_set():
            drained.extend(aggregates.drain())

    def work(n: int) -> None:
        for i in range(per_thread):
            aggregates.record(
                f"/t{n % 2}", "GET", 200, 0.0001 * (1 + i % 3), "ValueError" if i % 7 == 0 else None
            )

    drainer = threading.Thread(target=drain_while_recording)
    drainer.start()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    drainer.join()
    drained.extend(aggregates.drain())
    assert sum(p["count"] for p in drained) == threads * per_thread
    assert sum(sum(p["histogram"].values()) for p in drained) == threads * per_thread
    assert sum(p["errors"] for p in drained) == threads * len(range(0, per_thread, 7))
    assert {p["route"] for p in drained} == {"/t0", "/t1"}


def test_drain_output_matches_folding_in_order() -> None:
    aggregates = EndpointAggregates("1.0")
    aggregates.record("/a", "GET", 200, 0.02, None)
    aggregates.record("/b", "GET", 404, 0.0005, None)
    aggregates.record("/a", "GET", 200, 0.001, None)
    points = aggregates.drain()
    assert [(p["route"], p["status_class"], p["count"]) for p in points] == [
        ("/a", "2xx", 2),
        ("/b", "4xx", 1),
    ]
    assert list(points[0]["histogram"]) == [str(bucket_index(0.02)), str(bucket_index(0.001))]
    assert points[0]["duration_sum"] == 0.02 + 0.001


def test_reset_forgets_pending_requests() -> None:
    aggregates = EndpointAggregates("1.0")
    aggregates.record("/a", "GET", 200, 0.02, None)
    aggregates.reset()
    assert aggregates.drain() == []


def test_reset_does_not_wait_for_a_lock_left_held_by_a_fork() -> None:
    aggregates = EndpointAggregates("1.0")
    aggregates.record("/a", "GET", 200, 0.02, None)
    aggregates._lock.acquire()  # as if a thread of the parent was folding at fork time
    aggregates.reset()
    aggregates.record("/a", "GET", 200, 0.02, None)
    assert [p["count"] for p in aggregates.drain()] == [1]
