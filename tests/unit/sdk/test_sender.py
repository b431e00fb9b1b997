from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from performance_monitor.core.aggregates import EndpointAggregates
from performance_monitor.core.sender import Sender
from performance_monitor.utils.config import Config

from tests.utils.sink import Sink


class Item:
    def __init__(self, n: int) -> None:
        self.n = n

    def build(self) -> dict[str, Any]:
        return {"trace_id": f"{self.n:032x}", "n": self.n}


def make_sender(sink_url: str, **overrides: Any) -> Sender:
    values = {
        "project_key": "pk",
        "api_endpoint": sink_url,
        "batch_size": 5,
        "batch_timeout": 0.1,
        "metrics_interval": 0.1,
        "retry_backoff": 0.02,
        "retry_backoff_max": 0.1,
        "request_timeout": 1.0,
        **overrides,
    }
    return Sender(Config(values), EndpointAggregates("9.9"))


def test_records_are_batched_gzipped_and_authenticated(sink: Sink) -> None:
    sender = make_sender(sink.url)
    for n in range(12):
        sender.submit(Item(n))
    assert sink.wait_for(lambda: len(sink.records()) == 12)
    assert sorted(r["n"] for r in sink.records()) == list(range(12))
    assert all(len(p["records"]) <= 5 for p in sink.posts("/collect"))
    _, path, headers, _, _ = next(r for r in sink.requests if r[0] == "POST")
    assert path == "/api/v1/performance/collect"
    assert headers["X-Project-Key"] == "pk" and headers["Content-Encoding"] == "gzip"
    # The sink has the data a moment before the sender has its answer.
    assert sink.wait_for(lambda: sender.stats()["records_sent"] == 12)
    sender.close(0.5)


def test_metrics_flushed_with_unique_batch_ids(sink: Sink) -> None:
    sender = make_sender(sink.url)
    sender.ensure_started()
    sender.aggregates.record("/a", "GET", 200, 0.01, None)
    assert sink.wait_for(lambda: len(sink.metric_points()) == 1)
    sender.aggregates.record("/a", "GET", 200, 0.02, None)
    assert sink.wait_for(lambda: len(sink.metric_points()) == 2)
    batches = sink.posts("/metrics")
    assert len({b["batch_id"] for b in batches}) == len(batches)
    assert sum(p["count"] for p in sink.metric_points()) == 2
    sender.close(0.5)


def test_remote_config_is_polled_and_applied(sink: Sink) -> None:
    sink.remote_config = {"enabled": False, "sampling_rate": 0.25}
    seen: list[dict[str, Any]] = []
    sender = Sender(
        Config({"project_key": "pk", "api_endpoint": sink.url}),
        EndpointAggregates(),
        on_remote_config=seen.append,
    )
    sender.ensure_started()
    assert sink.wait_for(lambda: bool(seen))
    assert seen[0] == {"enabled": False, "sampling_rate": 0.25}
    sender.close(0.2)


def test_5xx_is_retried_then_succeeds_without_duplicates(sink: Sink) -> None:
    sink.mode = "error"
    sender = make_sender(sink.url, max_retries=50)
    sender.submit(Item(1))
    assert sink.wait_for(lambda: len(sink.posts("/collect", mode="error")) >= 2)
    sink.mode = "ok"
    assert sink.wait_for(lambda: len(sink.records()) == 1)
    assert sender.stats()["retried"] >= 2 and sender.stats()["failed"] == 0
    sender.close(0.5)


def test_4xx_is_not_retried(sink: Sink) -> None:
    sink.mode = "reject"
    sender = make_sender(sink.url, max_retries=5)
    sender.submit(Item(1))
    assert sink.wait_for(lambda: sender.stats()["failed"] == 1)
    time.sleep(0.3)
    assert len(sink.posts("/collect", mode="reject")) == 1
    assert sender.stats()["retried"] == 0
    sender.close(0.2)


def test_full_queue_drops_oldest_and_submit_never_blocks(sink: Sink) -> None:
    sink.mode = "slow"
    sink.delay = 2.0
    sender = make_sender(
        sink.url, max_queue_size=10, batch_size=1, request_timeout=0.5, max_retries=0
    )
    sender.submit(Item(-1))  # the thread picks this one up and waits on the slow sink
    time.sleep(0.1)
    start = time.perf_counter()
    results = [sender.submit(Item(n)) for n in range(100)]
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05  # 100 submits while the sender is stuck: no blocking
    assert results.count(False) >= 80
    stats = sender.stats()
    assert stats["queued"] <= 10 and stats["dropped"] >= 80
    assert [item.n for item in sender._queue][-1] == 99  # the newest survive
    sender._stopping = True
    sender.close(0)


def test_collector_unreachable_counts_failures(tmp_path: Any) -> None:
    sender = make_sender("http://127.0.0.1:9", max_retries=1)
    sender.submit(Item(1))
    deadline = time.monotonic() + 5
    while sender.stats()["failed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sender.stats()["failed"] == 1 and sender.stats()["retried"] == 1
    sender.close(0.1)


def test_flush_sends_everything_queued(sink: Sink) -> None:
    sender = make_sender(sink.url, batch_size=1000, batch_timeout=60, metrics_interval=60)
    for n in range(30):
        sender.submit(Item(n))
    sender.aggregates.record("/f", "GET", 200, 0.01, None)
    assert sender.flush(5)
    assert len(sink.records()) == 30 and len(sink.metric_points()) == 1
    sender.close(0.5)


def test_sync_mode_sends_in_the_caller(sink: Sink) -> None:
    sender = make_sender(sink.url, async_send=False)
    sender.submit(Item(5))
    assert [r["n"] for r in sink.records()] == [5]
    assert sender._thread is None
    sender.close(0.2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_its_own_thread_and_empty_queue(sink: Sink) -> None:
    sender = make_sender(sink.url, batch_timeout=60, batch_size=1000, metrics_interval=60)
    sender.submit(Item(1))  # stays queued in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            queued_after_fork = sender.stats()["queued"]
            sender.submit(Item(2))
            ok = sender.flush(5)
            os.write(
                write, json.dumps([queued_after_fork, ok, sender._thread is not None]).encode()
            )
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    queued_after_fork, flushed, has_thread = json.loads(os.read(read, 1000))
    assert queued_after_fork == 0 and flushed and has_thread
    assert [r["n"] for r in sink.records()] == [2]  # the child sent only its own record
    sender.flush(5)
    assert sorted(r["n"] for r in sink.records()) == [1, 2]
    sender.close(0.2)


def test_payload_is_valid_gzip_json(sink: Sink) -> None:
    from performance_monitor.core.transport import Transport

    response = Transport(sink.url, "pk", 2).post_json("/x", {"a": 1})
    assert response.ok and sink.posts("/x") == [{"a": 1}]
