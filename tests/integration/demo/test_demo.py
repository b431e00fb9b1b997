"""The demo shop against a real collector: what it planted is what the store holds."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pystrument_lab.demo import run_demo
from pystrument_lab.demo.app import DOWNSTREAM_DELAY, PROJECT_NAME, VERSIONS
from pystrument_lab.demo.shopdb import create_shop_database, orders
from pystrument_lab.demo.traffic import ENDPOINTS, expected_counts
from pystrument_lab.store import Store
from tests.utils.demo_records import warm_records
from tests.utils.sdk_guard import guarded_sdk
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.slow

REQUESTS = 40


@pytest.fixture(scope="module")
def demo_store(mongo_url: str) -> Iterator[Store]:
    name = "test_demo_" + uuid.uuid4().hex[:12]
    handle = Store(mongo_url, database=name)
    handle.ensure_indexes()
    yield handle
    handle.client.drop_database(name)
    handle.close()


@pytest.fixture(scope="module")
def seeded(demo_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One bounded demo run for the whole module (each run costs seconds of CPU).

    The same collector as the ``collector`` fixture, started once; SDK-internal
    errors are raised, so they surface as 500s that make ``run_demo`` fail.
    """
    home = tmp_path_factory.mktemp("demo-collector")
    collector = CollectorProcess(demo_store.url, demo_store.db.name, home)
    collector.start()
    try:
        with guarded_sdk():
            result = run_demo(collector.url, requests_per_version=REQUESTS, store=demo_store)
    finally:
        collector.stop()
    yield result


def _records(store: Any, key: str, **query: Any) -> list[dict[str, Any]]:
    return list(store.records.find({"project_key": key, **query}))


def _tree_time(store: Any, record: dict[str, Any], function: str) -> float:
    tree = store.call_trees.find_one(
        {"project_key": record["project_key"], "trace_id": record["trace_id"]}
    )
    assert tree is not None, f"no call tree for {record['route']} {record['trace_id']}"
    nodes = tree["nodes"]
    ids = {node["call_id"] for node in nodes if node["function_name"] == function}
    # Outermost calls only, so recursion is not counted twice.
    return sum(
        n["duration"] for n in nodes if n["call_id"] in ids and n["parent_call_id"] not in ids
    )


def _await_time(store: Any, record: dict[str, Any], function: str) -> float:
    """Seconds in ``[await]`` nodes below the outermost calls of ``function``."""
    tree = store.call_trees.find_one(
        {"project_key": record["project_key"], "trace_id": record["trace_id"]}
    )
    nodes = {node["call_id"]: node for node in tree["nodes"]}

    def below(node: dict[str, Any]) -> bool:
        parent = nodes.get(node["parent_call_id"])
        while parent is not None:
            if parent["function_name"] == function:
                return True
            parent = nodes.get(parent["parent_call_id"])
        return False

    return sum(
        n["duration"] for n in nodes.values() if n["function_name"] == "[await]" and below(n)
    )


def _order_rows(tmp_path: Path) -> int:
    engine = create_shop_database(tmp_path / "count.sqlite")
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(orders)).scalar_one())
    engine.dispose()
    return count


def test_run_demo_stores_every_request_of_both_versions(
    seeded: dict[str, Any], demo_store: Store
) -> None:
    key = seeded["project_key"]
    assert seeded["project"] == PROJECT_NAME and seeded["versions"] == ["1.0", "1.1"]
    project = demo_store.project_by_name(PROJECT_NAME)
    assert project is not None and project["project_key"] == key
    assert project["framework"] == "fastapi" and project["config"]["sampling_rate"] == 1.0
    for version in VERSIONS:
        records = _records(demo_store, key, app_version=version)
        assert len(records) == REQUESTS
        assert {(r["method"], r["route"]) for r in records} == set(ENDPOINTS)
        assert all(r["status_code"] == 200 for r in records)


def test_metric_documents_count_every_request(seeded: dict[str, Any], demo_store: Store) -> None:
    expected = expected_counts(REQUESTS)
    for version in VERSIONS:
        counted: Counter[tuple[str, str]] = Counter()
        query = {"project_key": seeded["project_key"], "app_version": version, "resolution": "1m"}
        for document in demo_store.endpoint_metrics.find(query):
            counted[(document["method"], document["route"])] += document["count"]
        assert counted == expected


def test_planted_bottlenecks_show_in_records_and_trees(
    seeded: dict[str, Any], demo_store: Store, tmp_path: Path
) -> None:
    key = seeded["project_key"]
    listing = _records(demo_store, key, route="/api/orders")
    assert listing and {
        r["performance_metrics"]["database_metrics"]["query_count"] for r in listing
    } == {_order_rows(tmp_path) + 1}
    assert all(_tree_time(demo_store, r, "load_order_items") > 0 for r in listing)

    for record in _records(demo_store, key, route="/api/report"):
        hot = _tree_time(demo_store, record, "compute_report_statistics")
        assert hot > 0.5 * record["total_duration"], (hot, record["total_duration"])

    warm = warm_records(demo_store, key, "/api/recommendations/{user_id}")
    assert len(warm) >= 2
    for record in warm:
        assert record["total_duration"] >= DOWNSTREAM_DELAY
    # Waiting, read from the tree: the downstream's delay is an [await] below
    # fetch_recommendations. (Not from CPU time: the demo tracks memory, which
    # makes each of httpx's allocations cost CPU, and it serves the downstream
    # on the same event-loop thread, whose CPU time the request's includes.)
    for record in warm:
        assert _tree_time(demo_store, record, "fetch_recommendations") >= 0.8 * DOWNSTREAM_DELAY
        assert _await_time(demo_store, record, "fetch_recommendations") >= 0.8 * DOWNSTREAM_DELAY

    # CPU-bound: the report ran, or waited only for a CPU, most of its wall time.
    for record in _records(demo_store, key, route="/api/report"):
        metrics = record["performance_metrics"]
        on_cpu = metrics["cpu_time"] + (metrics.get("run_queue_time") or 0.0)
        assert on_cpu > 0.5 * record["total_duration"], metrics

    for record in _records(demo_store, key, route="/api/export"):
        assert record["performance_metrics"]["memory_usage"]["peak_memory"] > 20.0
        assert _tree_time(demo_store, record, "build_export_buffer") > 0


def test_search_regresses_in_1_1_through_rank_search_results(
    seeded: dict[str, Any], demo_store: Store
) -> None:
    key = seeded["project_key"]
    durations: dict[str, float] = {}
    ranking: dict[str, float] = {}
    for version in VERSIONS:
        records = _records(demo_store, key, route="/api/search", app_version=version)
        assert len(records) >= 5
        durations[version] = statistics.median(r["total_duration"] for r in records)
        ranking[version] = statistics.median(
            _tree_time(demo_store, r, "rank_search_results") for r in records
        )
    assert durations["1.1"] > 2 * durations["1.0"], durations
    assert ranking["1.1"] > 3 * ranking["1.0"] and ranking["1.1"] > 0, ranking
    # The growth of the endpoint is the growth of that one function.
    assert ranking["1.1"] - ranking["1.0"] > 0.5 * (durations["1.1"] - durations["1.0"])


def test_cli_bounded_run_prints_the_project_key(collector: Any, store: Any) -> None:
    env = {
        **collector.env,
        "PYSTRUMENT_API_ENDPOINT": collector.url,
        "PYSTRUMENT_HOME": collector.env["PYSTRUMENT_HOME"],
    }
    requests = len(ENDPOINTS)
    completed = subprocess.run(
        [sys.executable, "-m", "pystrument_lab.cli", "demo", "--requests", str(requests), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.getcwd(),
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert result["collector"] == collector.url and result["requests_per_version"] == requests
    assert result["project_key"] == store.project_by_name(PROJECT_NAME)["project_key"]
    for version in VERSIONS:
        assert len(_records(store, result["project_key"], app_version=version)) == requests
