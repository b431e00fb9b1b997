from __future__ import annotations

from typing import Any

import pytest

from pystrument_lab.analysis import profile as profiles
from pystrument_lab.analysis.rules import analyze_profile, performance_score, severity_for
from tests.utils import trees


def analyse(record: dict[str, Any]) -> dict[str, Any]:
    return analyze_profile(profiles.from_record(record))


def by_kind(results: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in results["bottleneck_analysis"] if f["kind"] == kind]


def test_n_plus_one_names_the_loading_function() -> None:
    results = analyse(trees.n_plus_one_record(queries=40))
    [finding] = by_kind(results, "n_plus_one")
    assert finding["type"] == "database"
    assert finding["function"] == "load_order_items"
    assert finding["location"] == f"{trees.APP}:42"
    assert finding["impact"] == pytest.approx(0.06 / 0.07, abs=1e-4)
    assert finding["severity"] == "critical"
    assert "40 queries" in finding["description"]
    suggestion = next(s for s in results["optimization_suggestions"] if s["kind"] == "n_plus_one")
    assert suggestion["category"] == "database"
    assert suggestion["priority"] == "high"
    assert "IN ({marks})" in suggestion["code_example"]
    assert not by_kind(results, "cpu_hotspot")  # the loading function is not called a CPU hot spot


def test_few_queries_are_not_n_plus_one() -> None:
    assert not by_kind(analyse(trees.n_plus_one_record(queries=3)), "n_plus_one")


def test_slow_sql_reports_the_statement_and_the_caller() -> None:
    results = analyse(trees.slow_sql_record())
    [finding] = by_kind(results, "slow_sql")
    assert finding["type"] == "database"
    assert finding["function"] == "search_products"
    assert finding["evidence"]["statement"].startswith("SELECT * FROM products")
    assert finding["impact"] == pytest.approx(0.6 / 0.65, abs=1e-4)
    assert finding["severity"] == "critical"
    suggestion = results["optimization_suggestions"][0]
    assert "CREATE INDEX" in suggestion["code_example"]


def test_cpu_hotspot_in_application_code() -> None:
    results = analyse(trees.cpu_record())
    [finding] = by_kind(results, "cpu_hotspot")
    assert (finding["type"], finding["function"], finding["line_number"]) == (
        "computation",
        "compute_report_statistics",
        77,
    )
    assert finding["impact"] == pytest.approx(0.9)
    assert not by_kind(results, "waiting")
    assert results["optimization_suggestions"][0]["category"] == "algorithm"


def test_waiting_when_wall_time_far_exceeds_cpu_time() -> None:
    results = analyse(trees.waiting_record())
    [finding] = by_kind(results, "waiting")
    assert (finding["type"], finding["function"]) == ("io", "fetch_recommendations")
    assert finding["evidence"]["cpu_share"] == pytest.approx(0.01 / 0.3)
    assert finding["impact"] == pytest.approx(0.9)
    assert finding["severity"] == "critical"
    assert not by_kind(results, "cpu_hotspot")
    assert results["optimization_suggestions"][0]["category"] == "architecture"


def test_memory_growth_names_the_allocating_function() -> None:
    results = analyse(trees.memory_record())
    [finding] = by_kind(results, "memory_growth")
    assert (finding["type"], finding["function"]) == ("memory", "build_export_buffer")
    assert finding["severity"] == "high"  # 160 MB peak
    assert finding["evidence"]["memory_delta"] == 150.0


def test_memory_under_the_thresholds_is_not_reported() -> None:
    record = trees.memory_record()
    record["performance_metrics"]["memory_usage"] = {"peak_memory": 15.0, "memory_delta": 5.0}
    assert not by_kind(analyse(record), "memory_growth")
    # ... unless the project's alert threshold is lower
    results = analyze_profile(profiles.from_record(record), memory_threshold_mb=12.0)
    assert by_kind(results, "memory_growth")[0]["function"] == "build_export_buffer"


def test_excessive_calls() -> None:
    results = analyse(trees.excessive_calls_record(calls=80))
    [finding] = by_kind(results, "excessive_calls")
    assert finding["function"] == "get_exchange_rate"
    assert finding["evidence"]["calls"] == 80
    assert any(s["category"] == "caching" for s in results["optimization_suggestions"])


def test_spec_structure_and_risk_assessment() -> None:
    results = analyse(trees.n_plus_one_record())
    assert set(results) == {
        "performance_score",
        "bottleneck_analysis",
        "optimization_suggestions",
        "risk_assessment",
    }
    for finding in results["bottleneck_analysis"]:
        assert finding["type"] in ("database", "computation", "io", "memory")
        assert finding["severity"] in ("critical", "high", "medium", "low")
        assert 0.0 <= finding["impact"] <= 1.0
    for suggestion in results["optimization_suggestions"]:
        assert suggestion["category"] in ("database", "caching", "algorithm", "architecture")
        assert suggestion["code_example"].strip()
    risks = results["risk_assessment"]
    assert risks["current_risks"][0].startswith("critical: N+1 queries")
    assert "Query count grows" in risks["potential_issues"][0]
    assert risks["recommendations"][0].startswith("Load load_order_items")


def test_endpoint_profile_merges_trees_and_averages_metrics() -> None:
    records = [trees.n_plus_one_record(queries=q) for q in (20, 40)]
    profile = profiles.from_records(records, [r["function_calls"] for r in records])
    assert profile.requests == 2
    assert profile.query_count == 30
    assert profile.tree is not None and profile.tree.n_trees == 2
    results = analyze_profile(profile)
    assert by_kind(results, "n_plus_one")[0]["function"] == "load_order_items"


def test_score_formula() -> None:
    assert performance_score(0.05, []) == 100
    assert performance_score(2.0, []) == 60
    assert performance_score(1.05, []) == 80
    assert performance_score(0.05, [{"severity": "critical"}, {"severity": "low"}]) == 73
    assert performance_score(5.0, [{"severity": "critical"}] * 4) == 0
    assert [severity_for(x) for x in (0.6, 0.3, 0.1, 0.05)] == ["critical", "high", "medium", "low"]


def test_a_healthy_request_scores_high_and_has_no_findings() -> None:
    from tests.utils.factories import make_record

    results = analyse(make_record(duration=0.02))
    assert results["bottleneck_analysis"] == []
    assert results["performance_score"] == 100
    assert "No bottleneck" in results["risk_assessment"]["recommendations"][0]
