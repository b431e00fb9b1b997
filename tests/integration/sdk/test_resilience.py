"""The app does not notice when the collector is down, slow or failing; data arrives after recovery."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import performance_monitor
import pytest

from tests.utils.sink import Sink

from .apps import flask_app
from .helpers import metric_count, stored_records, wait_until

REQUESTS = 15


def _latencies(client: Any, count: int = REQUESTS) -> tuple[float, list[bytes]]:
    times, bodies = [], []
    for i in range(count):
        start = time.perf_counter()
        bodies.append(client.get(f"/users/{i}").get_data())
        times.append(time.perf_counter() - start)
    return statistics.median(times), bodies


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


def test_collector_down_then_back_delivers_everything_once(
    sdk_settings: dict[str, Any],
    tmp_path: Path,
    store: Any,
    project: dict[str, Any],
    collector: Any,
) -> None:
    app = flask_app.create_app({**sdk_settings, "remote_config": False}, tmp_path / "db.sqlite3")
    client = app.test_client()
    up, up_bodies = _latencies(client, 5)
    key = project["project_key"]
    stored_records(store, key, 5)
    collector.stop()
    down, down_bodies = _latencies(client)
    assert down_bodies == [f'{{"id":{i},"name":"user{i}"}}\n'.encode() for i in range(REQUESTS)]
    assert down / up < 1.5, (down, up)
    assert performance_monitor.stats()["retried"] > 0  # it noticed, and kept trying
    collector.start()
    records = stored_records(store, key, 5 + REQUESTS, timeout=30)
    trace_ids = [r["trace_id"] for r in records]
    assert len(trace_ids) == 5 + REQUESTS == len(set(trace_ids))
    assert wait_until(
        lambda: metric_count(store, key, "/users/<int:user_id>") == 5 + REQUESTS, timeout=30
    )
    time.sleep(1.0)  # nothing more arrives later: no duplicates from retries
    assert store.records.count_documents({"project_key": key}) == 5 + REQUESTS
    assert metric_count(store, key, "/users/<int:user_id>") == 5 + REQUESTS


def _app_for(sink: Sink, tmp_path: Path, **extra: Any) -> Any:
    settings = {
        "project_key": "pk",
        "api_endpoint": sink.url,
        "sampling_rate": 1.0,
        "batch_timeout": 0.05,
        "metrics_interval": 0.1,
        "retry_backoff": 0.05,
        "retry_backoff_max": 0.2,
        **extra,
    }
    return flask_app.create_app(settings, tmp_path / "db.sqlite3")


def test_slow_collector_does_not_slow_the_app_and_memory_stays_bounded(
    sink: Sink, tmp_path: Path
) -> None:
    app = _app_for(sink, tmp_path, max_queue_size=20, request_timeout=5.0, max_retries=0)
    client = app.test_client()
    baseline, _ = _latencies(client, 5)
    sink.mode = "slow"  # every answer takes 10 s
    sink.delay = 10.0
    slow, bodies = _latencies(client, 60)
    assert all(b.startswith(b'{"id":') for b in bodies)
    assert slow / baseline < 1.5, (slow, baseline)
    stats = app.extensions["performance_monitor"].monitor.sender.stats()
    assert stats["queued"] <= 20 and stats["dropped"] >= 60 - 20 - 2 * 50  # bounded queue
    assert stats["queued"] + stats["dropped"] + stats["records_sent"] + 2 >= 60


def test_collector_answering_500_then_recovering(sink: Sink, tmp_path: Path) -> None:
    app = _app_for(sink, tmp_path, max_retries=100)
    client = app.test_client()
    baseline, _ = _latencies(client, 5)
    assert sink.wait_for(lambda: len(sink.records()) == 5)
    sink.mode = "error"
    failing, _ = _latencies(client)
    assert failing / baseline < 1.5, (failing, baseline)
    assert sink.wait_for(lambda: len(sink.posts("/api/", mode="error")) >= 2)
    sink.mode = "ok"
    assert sink.wait_for(lambda: len(sink.records()) == 5 + REQUESTS, timeout=15)
    trace_ids = [r["trace_id"] for r in sink.records()]
    assert len(set(trace_ids)) == len(trace_ids) == 5 + REQUESTS
    assert sink.wait_for(lambda: sum(p["count"] for p in sink.metric_points()) == 5 + REQUESTS)
