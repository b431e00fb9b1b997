"""Kill the collector or the store under steady traffic from a real SDK app; keep an exact ledger.

The app is the SDK tests' Flask service, driven through its test client by a
traffic thread; every request has its own path (``/users/<n>``), so each
stored record names the request it came from. The SDK does not expose the
trace ids it sends, so the test observes them where they leave the process:
a wrapper around the sender's transport notes the trace ids of every collect
attempt and whether the collector accepted it. At the end:

- every request answered 200 with the right body (the app never noticed);
- every trace id the SDK counted as sent is stored exactly once;
- nothing is stored that the SDK never sent, and nothing twice;
- the requests with no stored record are exactly the ones the SDK counted
  as dropped (queue full, never sent) plus those it counted as failed;
- the metric stream counts every request at most once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import performance_monitor
import pytest
from performance_monitor.core import monitor as monitor_module
from performance_monitor.core.transport import COLLECT_PATH

from pystrument_lab.embedded import EmbeddedServer
from pystrument_lab.store import Store
from tests.integration.sdk.apps import flask_app
from tests.utils.audit import new_project, running_collector, scaled
from tests.utils.sdk_guard import guarded_sdk
from tests.utils.services import CollectorProcess

OUTAGE = scaled(2.5, 8.0)  # seconds the component stays down
STEADY = scaled(1.0, 4.0)  # seconds of traffic before and after the outage
ROUNDS = scaled(1, 3)  # outages per test

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def sdk_isolation() -> Iterator[None]:
    with guarded_sdk(close_timeout=0.5):
        yield


@dataclass
class Ledger:
    """What the app served and what the sender tried to deliver."""

    responses: list[tuple[int, int, bytes]] = field(default_factory=list)  # (n, status, body)
    attempts: list[tuple[list[str], int]] = field(default_factory=list)  # (trace ids, HTTP status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, transport: Any) -> None:
        original: Callable[[str, Any], Any] = transport.post_json

        def post_json(path: str, payload: Any) -> Any:
            if path != COLLECT_PATH:
                return original(path, payload)
            ids = [record["trace_id"] for record in payload["records"]]
            # Recorded even when the call raises: a collector killed mid-request
            # may have stored the batch before the connection broke.
            status = 0
            try:
                response = original(path, payload)
                status = response.status
                return response
            finally:
                with self.lock:
                    self.attempts.append((ids, status))

        transport.post_json = post_json

    def confirmed(self) -> list[str]:
        return [i for ids, status in self.attempts if 200 <= status < 300 for i in ids]

    def attempted(self) -> set[str]:
        return {i for ids, _ in self.attempts for i in ids}


class Traffic:
    """A thread sending ``GET /users/<n>`` through the app's test client, n = 0, 1, 2, ..."""

    def __init__(self, app: Any, ledger: Ledger, pause: float = 0.005) -> None:
        self.client = app.test_client()
        self.ledger = ledger
        self.pause = pause
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            response = self.client.get(f"/users/{n}")
            self.ledger.responses.append((n, response.status_code, response.get_data()))
            n += 1
            time.sleep(self.pause)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)


def sdk_app(collector: CollectorProcess, key: str, tmp_path: Path, ledger: Ledger) -> Any:
    settings = {
        "project_key": key,
        "api_endpoint": collector.url,
        "sampling_rate": 1.0,
        "batch_size": 10,
        "batch_timeout": 0.1,
        "max_queue_size": 20,  # small on purpose: a long outage must drop, and count it
        "metrics_interval": 0.3,
        "retry_backoff": 0.05,
        "retry_backoff_max": 0.4,
        "max_retries": 100,
        "request_timeout": 2.0,
        "remote_config": False,
        "shutdown_timeout": 30.0,
    }
    app = flask_app.create_app(settings, tmp_path / "db.sqlite3")
    (monitor,) = [m for m in monitor_module.all_monitors() if m.config.project_key == key]
    assert monitor.sender is not None
    ledger.watch(monitor.sender.transport)
    return app


def settle(ledger: Ledger, store: Store, key: str) -> dict[str, Any]:
    """Flush the SDK, then check the ledger against the store; returns the figures."""
    assert performance_monitor.flush(timeout=60)
    stats = performance_monitor.stats()
    assert stats["queued"] == 0, stats

    served = ledger.responses
    assert served, "no traffic"
    assert [n for n, _, _ in served] == list(range(len(served)))
    errors = [(n, status) for n, status, _ in served if status != 200]
    assert errors == [], f"the app failed {len(errors)} of {len(served)} requests"
    assert all(body == f'{{"id":{n},"name":"user{n}"}}\n'.encode() for n, _, body in served)

    documents = list(store.records.find({"project_key": key}, {"trace_id": 1, "path": 1}))
    stored = [doc["trace_id"] for doc in documents]
    assert len(stored) == len(set(stored)), "a record is stored twice"
    stored_paths = [doc["path"] for doc in documents]
    assert len(stored_paths) == len(set(stored_paths)), "one request produced two records"
    assert store.call_trees.count_documents({"project_key": key}) == len(stored)

    confirmed = ledger.confirmed()
    assert len(confirmed) == len(set(confirmed)), "the SDK counted a record as sent twice"
    assert len(confirmed) == stats["records_sent"]
    assert set(confirmed) <= set(stored), "a record the SDK counted as sent is missing"
    assert set(stored) <= ledger.attempted(), "a stored record was never sent"
    # A batch the collector stored just before it died, whose retries all failed,
    # is counted as failed by the SDK yet stored: only failed records may do that.
    stored_but_failed = set(stored) - set(confirmed)
    assert len(stored_but_failed) <= stats["failed"]

    missing = len(served) - len(stored)
    assert missing == stats["dropped"] + stats["failed"] - len(stored_but_failed), (missing, stats)
    never_sent = {f"/users/{n}" for n, _, _ in served} - set(stored_paths)
    assert len(never_sent) == missing

    metric_total = sum(
        doc["count"]
        for doc in store.endpoint_metrics.find(
            {"project_key": key, "resolution": "1m", "route": "/users/<int:user_id>"}
        )
    )
    assert metric_total <= len(served), "a metric batch was counted twice"
    figures = {
        "requests": len(served),
        "stored": len(stored),
        "sent": stats["records_sent"],
        "dropped": stats["dropped"],
        "failed": stats["failed"],
        "retried": stats["retried"],
        "metric_count": metric_total,
    }
    print("ledger:", figures)  # shown with -s; the long mode's figures go in the report
    return figures


def wait_health(url: str, code: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).json()["code"] == code:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"/health never answered {code}")


def test_collector_sigkill_under_traffic(mongo_url: str, tmp_path: Path) -> None:
    with running_collector(mongo_url, tmp_path / "collector") as collector:
        key = new_project(collector, "sigkill")["project_key"]
        store = Store(mongo_url, database=collector.env["PYSTRUMENT_DATABASE"])
        ledger = Ledger()
        app = sdk_app(collector, key, tmp_path, ledger)
        try:
            with Traffic(app, ledger):
                for _ in range(ROUNDS):
                    time.sleep(STEADY)
                    collector.stop(kill=True)  # SIGKILL: no graceful shutdown
                    time.sleep(OUTAGE)
                    collector.start()
                time.sleep(STEADY)
            figures = settle(ledger, store, key)
            stats = performance_monitor.stats()
            assert stats["retried"] > 0  # the outage was seen
            assert figures["dropped"] > 0  # and the small queue overflowed, counted
            assert figures["failed"] == 0  # retries outlast the outage
            assert figures["stored"] == figures["sent"] == figures["requests"] - figures["dropped"]
        finally:
            store.close()


def test_store_killed_under_traffic(private_server: EmbeddedServer, tmp_path: Path) -> None:
    url = private_server.ensure_running()
    database = "outage_" + uuid.uuid4().hex[:8]
    collector = CollectorProcess(url, database, tmp_path)
    collector.start()
    store = Store(url, database=database)
    try:
        key = new_project(collector, "store-outage")["project_key"]
        ledger = Ledger()
        app = sdk_app(collector, key, tmp_path, ledger)
        with Traffic(app, ledger):
            for _ in range(ROUNDS):
                time.sleep(STEADY)
                assert private_server.stop()
                wait_health(collector.url, 10005)
                time.sleep(OUTAGE)
                private_server.start()
                wait_health(collector.url, 0)
            time.sleep(STEADY)
        figures = settle(ledger, store, key)
        # A send meets the outage as a 503 (the collector's store call gave up after
        # its 1 s timeout) or, on a loaded machine where that answer comes after the
        # SDK's 2 s request timeout, as a send that timed out (status 0); both are
        # retried, and everything sent must end stored once.
        refused = [status for _, status in ledger.attempts if status in (0, 503)]
        assert refused, "no send met the outage"
        assert figures["failed"] == 0
        assert figures["stored"] == figures["sent"] == figures["requests"] - figures["dropped"]
    finally:
        for monitor in monitor_module.all_monitors():
            monitor.close(timeout=0.5)
        collector.stop()
        store.close()
