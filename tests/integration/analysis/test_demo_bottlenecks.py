"""The rule engine on records the demo service produced names each planted bottleneck."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pystrument_lab.analysis import analyze
from pystrument_lab.demo import run_demo
from pystrument_lab.demo.traffic import CYCLE_LENGTH
from pystrument_lab.store import Store
from tests.utils.demo_records import warm_records
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.slow

#: route template prefix → (bottleneck type, function) planted by the demo.
PLANTED = {
    "/api/orders": ("database", "load_order_items"),
    "/api/report": ("computation", "compute_report_statistics"),
    "/api/recommendations": ("io", "fetch_recommendations"),
    "/api/export": ("memory", "build_export_buffer"),
}


@pytest.fixture(scope="module")
def demo(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    name = "test_demo_analysis_" + uuid.uuid4().hex[:10]
    store = Store(mongo_url, database=name)
    store.ensure_indexes()
    collector = CollectorProcess(store.url, name, tmp_path_factory.mktemp("demo-analysis"))
    collector.start()
    try:
        # Two cycles of the traffic mix: every endpoint is served warm at least once per version.
        result = run_demo(collector.url, requests_per_version=2 * CYCLE_LENGTH, store=store)
    finally:
        collector.stop()
    yield store, result["project_key"]
    store.client.drop_database(name)
    store.close()


def _route(store: Store, key: str, prefix: str) -> str:
    routes = store.records.distinct("route", {"project_key": key})
    matching = [r for r in routes if r == prefix] or [
        r for r in routes if r.startswith(prefix + "/{")
    ]
    assert len(matching) == 1, routes
    return str(matching[0])


@pytest.mark.parametrize("prefix", list(PLANTED))
def test_endpoint_analysis_names_the_planted_bottleneck(
    demo: tuple[Store, str], prefix: str
) -> None:
    store, key = demo
    expected_type, function = PLANTED[prefix]
    report = analyze((key, _route(store, key, prefix)), service="rules", store=store)
    findings = report["analysis_results"]["bottleneck_analysis"]
    named = [(f["type"], f["function"]) for f in findings]
    assert (expected_type, function) in named, (
        findings,
        report["analysis_input"]["performance_summary"],
    )
    assert report["analysis_results"]["performance_score"] < 100


@pytest.mark.parametrize("prefix", list(PLANTED))
def test_single_record_analysis_names_the_planted_bottleneck(
    demo: tuple[Store, str], prefix: str
) -> None:
    store, key = demo
    expected_type, function = PLANTED[prefix]
    # The slowest sampled request, as a user would open it, once the endpoint is warm.
    record: dict[str, Any] = max(
        (r for r in warm_records(store, key, _route(store, key, prefix)) if r.get("has_tree")),
        key=lambda r: r["total_duration"],
    )
    report = analyze(record["trace_id"], store=store)
    assert report["status"] == "completed"
    named = [(f["type"], f["function"]) for f in report["analysis_results"]["bottleneck_analysis"]]
    assert (expected_type, function) in named, report["analysis_results"]["bottleneck_analysis"]
    assert (
        store.analyses.count_documents({"trace_id": record["trace_id"], "analysis_type": "manual"})
        == 1
    )
