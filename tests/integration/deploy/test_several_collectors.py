"""Several collector processes on one store, as behind a load balancer.

One collector is ``pystrument collector --workers 2`` (two uvicorn worker
processes on one port), the other a plain ``uvicorn collector.app:app``; both
write to one embedded store. The same batches go through both at once,
with retries, and the store must hold each record once and each metric
point once; the rate limit is one budget across all of them.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess


class MultiWorkerCollector(CollectorProcess):
    """``pystrument collector --workers N`` on a free port."""

    workers = 2

    def start(self, timeout: float = 60.0) -> None:
        command = [sys.executable, "-m", "pystrument_lab.cli", "collector"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            command, env={**self.env, "LOG_LEVEL": "WARNING"}, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/health", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"collector did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self, kill: bool = True) -> None:
        # terminate, so the uvicorn supervisor stops its worker processes too
        super().stop(kill=False)


@pytest.fixture
def two_collectors(
    store: Store, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[list[CollectorProcess]]:
    limit = getattr(request, "param", "100000")
    env = {"PYSTRUMENT_RATE_LIMIT_PER_MINUTE": limit}
    first = MultiWorkerCollector(store.url, store.db.name, tmp_path, **env)
    second = CollectorProcess(store.url, store.db.name, tmp_path, **env)
    second.admin_token = first.admin_token
    second.env["PYSTRUMENT_ADMIN_TOKEN"] = first.admin_token
    started: list[CollectorProcess] = []
    try:
        for process in (first, second):
            process.start()
            started.append(process)
        yield started
    finally:
        for process in started:
            process.stop()


def _post(collector: CollectorProcess, route: str, key: str, body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{collector.url}/api/v1/performance/{route}",
        json=body,
        headers={"X-Project-Key": key},
        timeout=60.0,
    )
    payload: dict[str, Any] = response.json()
    assert response.status_code == 200, payload
    return payload["data"]


def test_batches_sent_through_both_are_stored_once(
    two_collectors: list[CollectorProcess], store: Store
) -> None:
    key = two_collectors[0].create_project("shared-store", sampling_rate=1.0)["project_key"]
    rng = random.Random(20)
    records = [make_record(path=f"/items/{n}", duration=0.01 * (1 + n % 7)) for n in range(120)]
    # batches of 6 that overlap (a record re-sent in the next batch, as an SDK retry after a
    # lost answer does), each sent through both collectors, some twice
    record_batches = [records[start : start + 6] for start in range(0, 120, 4)]
    metric_batches = []
    for n in range(24):
        durations = [round(rng.uniform(0.001, 0.5), 4) for _ in range(1 + n % 5)]
        metric_batches.append(
            {
                "batch_id": uuid.uuid4().hex,
                "metrics": [
                    make_metric(durations, route=f"/r/{n % 3}", errors=n % 2),
                    make_metric([0.02], route="/health", method="HEAD"),
                ],
            }
        )
    sends = [("collect", batch) for batch in record_batches for _ in range(2)]
    sends += [("metrics", batch) for batch in metric_batches for _ in range(2)]
    sends += [("collect", batch) for batch in record_batches[::5]]
    sends += [("metrics", batch) for batch in metric_batches[::4]]
    rng.shuffle(sends)

    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda item: (
                    item[0],
                    _post(two_collectors[item[1] % 2], item[0][0], key, item[0][1]),
                ),
                [(send, index) for index, send in enumerate(sends)],
            )
        )

    record_answers = [data for (route, _), data in answers if route == "collect"]
    metric_answers = [data for (route, _), data in answers if route == "metrics"]
    assert sum(data["accepted"] for data in record_answers) == 120
    assert sum(data["accepted"] + data["duplicates"] for data in record_answers) == sum(
        len(batch) for (route, batch), _ in answers if route == "collect"
    )
    assert store.records.count_documents({"project_key": key}) == 120
    assert store.call_trees.count_documents({"project_key": key}) == 120
    assert sorted(store.records.distinct("path", {"project_key": key})) == sorted(
        f"/items/{n}" for n in range(120)
    )
    assert sum(not data["duplicate_batch"] for data in metric_answers) == 24
    assert store.metric_batches.count_documents({"project_key": key}) == 24

    sent_points = [point for batch in metric_batches for point in batch["metrics"]]
    for resolution in ("1m", "10m", "1h"):
        docs = list(store.endpoint_metrics.find({"project_key": key, "resolution": resolution}))
        assert sum(doc["count"] for doc in docs) == sum(p["count"] for p in sent_points)
        assert sum(doc["errors"] for doc in docs) == sum(p["errors"] for p in sent_points)
        assert sum(doc["duration_sum"] for doc in docs) == pytest.approx(
            sum(p["duration_sum"] for p in sent_points)
        )
        assert sum(sum(doc["histogram"].values()) for doc in docs) == sum(
            p["count"] for p in sent_points
        )
        per_route = {
            route: sum(doc["count"] for doc in docs if doc["route"] == route)
            for route in ("/r/0", "/r/1", "/r/2", "/health")
        }
        assert per_route == {
            route: sum(p["count"] for p in sent_points if p["route"] == route)
            for route in per_route
        }


@pytest.mark.parametrize("two_collectors", ["9"], indirect=True)
def test_the_rate_limit_is_one_budget_across_collectors(
    two_collectors: list[CollectorProcess],
) -> None:
    key = two_collectors[0].create_project("limited-everywhere")["project_key"]
    other = two_collectors[1].create_project("unlimited-neighbour")["project_key"]

    def send(collector: CollectorProcess, project_key: str) -> httpx.Response:
        return httpx.post(
            collector.url + "/api/v1/performance/collect",
            json=make_record(),
            headers={"X-Project-Key": project_key},
            timeout=30.0,
        )

    # 12 requests spread over three processes; 9 fit the budget, wherever they land
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda n: send(two_collectors[n % 2], key), range(12)))
    codes = sorted(response.json()["code"] for response in responses)
    assert codes == [0] * 9 + [10004] * 3
    refused = [response for response in responses if response.status_code == 429]
    assert all(response.json()["data"]["retry_after"] > 0 for response in refused)
    for collector in two_collectors:
        assert send(collector, key).status_code == 429
        assert send(collector, other).json()["code"] == 0
