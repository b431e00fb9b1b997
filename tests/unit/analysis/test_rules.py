"""The rule engine reads evidence (statements, allocation sites, CPU vs wall), not names.

Function names here say nothing about what the functions do: a finding that
names the right one found it from the measurements.
"""

from __future__ import annotations

from typing import Any

import pytest

from pystrument_lab.analysis import profile as profiles
from pystrument_lab.analysis.rules import analyze_profile, performance_score, severity_for
from pystrument_lab.analysis.suggestions import index_for, one_query_for_all
from tests.utils import trees
from tests.utils.factories import make_record
from tests.utils.trees import APP, handler_tree, node

SQLITE = "/usr/lib/python3.11/sqlite3/dbapi2.py"
HTTP = "/venv/lib/python3.11/site-packages/urllib3/connectionpool.py"


def analyse(record: dict[str, Any], **options: Any) -> dict[str, Any]:
    return analyze_profile(profiles.from_record(record), **options)


def top(results: dict[str, Any]) -> tuple[str, str]:
    first = results["bottleneck_analysis"][0]
    return first["type"], first["function"]


def by_kind(results: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in results["bottleneck_analysis"] if f["kind"] == kind]


def record_of(
    nodes: list[dict[str, Any]], wall: float, cpu: float, **metrics: Any
) -> dict[str, Any]:
    return make_record(
        path="/x",
        route="/x",
        duration=wall,
        nodes=nodes,
        performance_metrics={"total_duration": wall, "cpu_time": cpu, **metrics},
    )


def test_repeated_statement_is_n_plus_one_at_its_call_site() -> None:
    execute = node(4, 3, "execute", 0.045, 0.045, file=SQLITE, app=False, depth=4)
    record = record_of(
        handler_tree("tend", "gather", 0.005, 0.075, line=42, extra=[execute]), 0.075, 0.07
    )
    sql = "SELECT name, qty FROM lines WHERE order_id = ?"
    trees.with_statements(
        record,
        trees.statement(sql, 31, 0.031, "gather", 44),
        trees.statement("SELECT id FROM orders", 1, 0.001, "tend", 12),
    )
    results = analyse(record)
    [finding] = by_kind(results, "n_plus_one")
    assert top(results) == ("database", "gather")
    assert finding["location"] == f"{APP}:42"
    assert finding["evidence"]["repeats"] == 31
    assert finding["evidence"]["statement"] == sql
    # 31 queries on a 75 ms request is not "low": the cost grows with the data.
    assert finding["severity"] == "high"
    assert not by_kind(results, "cpu_hotspot")
    suggestion = results["optimization_suggestions"][0]
    assert suggestion["function"] == "gather"
    assert "SELECT name, qty FROM lines WHERE order_id IN (?, ?, ?)" in suggestion["code_example"]
    assert f"gather ({APP}:42)" in suggestion["code_example"]


def test_a_comprehension_call_site_names_the_function_that_holds_it() -> None:
    comprehension = node(4, 3, "<listcomp>", 0.05, 0.004, line=61, depth=4)
    execute = node(5, 4, "execute", 0.046, 0.046, file=SQLITE, app=False, depth=5)
    nodes = handler_tree("tend", "sift", 0.002, 0.08, line=60, extra=[comprehension, execute])
    record = record_of(nodes, 0.08, 0.075)
    trees.with_statements(
        record, trees.statement("SELECT * FROM parts WHERE kit_id = ?", 40, 0.04, "<listcomp>", 61)
    )
    assert top(analyse(record)) == ("database", "sift")


def test_few_repeats_are_not_n_plus_one() -> None:
    record = record_of(handler_tree("tend", "gather", 0.005, 0.02), 0.02, 0.02)
    trees.with_statements(
        record, trees.statement("SELECT * FROM t WHERE id = ?", 3, 0.003, "gather", 41)
    )
    assert not by_kind(analyse(record), "n_plus_one")


def test_one_slow_statement_gets_an_index_on_what_it_filters() -> None:
    execute = node(4, 3, "execute", 0.6, 0.6, file=SQLITE, app=False, depth=4)
    record = record_of(
        handler_tree("tend", "probe", 0.01, 0.65, line=55, extra=[execute]), 0.65, 0.6
    )
    sql = "SELECT * FROM events WHERE owner = ? AND kind = ? ORDER BY created"
    trees.with_statements(record, trees.statement(sql, 1, 0.6, "probe", 57))
    results = analyse(record)
    [finding] = by_kind(results, "slow_sql")
    assert top(results) == ("database", "probe")
    assert finding["severity"] == "critical"
    code = results["optimization_suggestions"][0]["code_example"]
    assert f"EXPLAIN {sql}" in code
    assert "CREATE INDEX ix_events_owner_kind_created ON events (owner, kind, created);" in code


def test_cpu_bound_function_is_a_hot_spot() -> None:
    record = record_of(handler_tree("tend", "fold", 0.45, 0.5, line=77), 0.5, 0.49)
    results = analyse(record)
    [finding] = by_kind(results, "cpu_hotspot")
    assert (finding["type"], finding["function"], finding["line_number"]) == (
        "computation",
        "fold",
        77,
    )
    assert finding["impact"] == pytest.approx(0.9)
    assert finding["severity"] == "critical"
    assert not by_kind(results, "waiting")


def test_await_under_a_function_is_waiting() -> None:
    wait = node(4, 3, "[await]", 0.27, 0.27, file="", app=False, depth=4)
    record = record_of(handler_tree("tend", "fetch", 0.02, 0.3, line=90, extra=[wait]), 0.3, 0.01)
    results = analyse(record)
    [finding] = by_kind(results, "waiting")
    assert top(results) == ("io", "fetch")
    # The await, and the function's own time the 10 ms of CPU cannot account for.
    assert 0.27 / 0.3 <= finding["impact"] <= 0.29 / 0.3
    assert finding["evidence"]["cpu_share"] == pytest.approx(0.01 / 0.3)
    assert not by_kind(results, "cpu_hotspot")


def test_a_lock_wait_with_no_frame_of_its_own_is_waiting() -> None:
    # ``with lock:`` blocks in the function's own line: the tree shows its self
    # time, the CPU time shows it was not computing.
    record = record_of(handler_tree("tend", "hold", 0.2, 0.25, line=30), 0.25, 0.02)
    assert top(analyse(record)) == ("io", "hold")


def test_own_time_lost_to_the_gil_is_not_a_wait() -> None:
    # The same 230 ms off the CPU, in 46 voluntary switches: a thread losing the
    # GIL to another every switch interval, not one long wait.
    record = record_of(handler_tree("tend", "hold", 0.2, 0.25, line=30), 0.25, 0.02)
    record["performance_metrics"]["context_switches"] = 46
    assert top(analyse(record)) == ("computation", "hold")
    # One switch: one long block (a lock held elsewhere).
    record["performance_metrics"]["context_switches"] = 1
    assert top(analyse(record)) == ("io", "hold")


def test_the_same_own_time_on_the_cpu_is_computation() -> None:
    record = record_of(handler_tree("tend", "hold", 0.2, 0.25, line=30), 0.25, 0.24)
    assert top(analyse(record)) == ("computation", "hold")


def test_a_blocking_call_in_a_library_is_waiting_in_its_caller() -> None:
    request = node(4, 3, "urlopen", 0.2, 0.001, file=HTTP, app=False, depth=4)
    recv = node(
        5, 4, "_socket.socket.recv_into", 0.199, 0.199, file="<built-in>", app=False, depth=5
    )
    record = record_of(
        handler_tree("tend", "ask", 0.002, 0.22, line=12, extra=[request, recv]), 0.22, 0.015
    )
    results = analyse(record)
    [finding] = by_kind(results, "waiting")
    assert top(results) == ("io", "ask")
    assert "urlopen (urllib3/connectionpool.py)" in finding["evidence"]["wait_calls"]


def test_a_c_call_on_the_cpu_is_computation_in_its_caller() -> None:
    # A regex over a big string: one long C call, and the CPU was busy all along.
    match = node(4, 3, "re.Pattern.sub", 0.3, 0.3, file="<built-in>", app=False, depth=4)
    record = record_of(handler_tree("tend", "scrub", 0.01, 0.33, line=8, extra=[match]), 0.33, 0.32)
    results = analyse(record)
    assert top(results) == ("computation", "scrub")
    assert "re.Pattern.sub" in results["optimization_suggestions"][0]["code_example"]


def test_memory_names_the_function_holding_the_allocation_site() -> None:
    inner = node(4, 3, "<listcomp>", 0.03, 0.03, line=125, depth=4)
    nodes = handler_tree("tend", "knit", 0.005, 0.08, line=120, extra=[inner])
    nodes[2]["self_time"] += 0.0  # the handler hashes what knit made: its own time
    record = record_of(
        nodes, 0.08, 0.07, memory_usage={
            "peak_memory": 64.0, "memory_delta": 60.0,
            "allocations": [{"function": "<listcomp>", "file": APP, "line": 125, "size": 60 * 2**20, "count": 9}],
        },
    )  # fmt: skip
    results = analyse(record)
    [finding] = by_kind(results, "memory_growth")
    assert top(results) == ("memory", "knit")
    assert finding["severity"] == "high"  # 64 MB a request
    assert f"{APP}:125" in finding["description"]
    assert not [f for f in by_kind(results, "cpu_hotspot") if f["function"] == "knit"]


def test_memory_without_a_site_names_where_the_cpu_went_and_says_so() -> None:
    record = record_of(
        handler_tree("tend", "knit", 0.05, 0.08, line=120), 0.08, 0.07,
        memory_usage={"peak_memory": 160.0, "memory_delta": 150.0},
    )  # fmt: skip
    [finding] = by_kind(analyse(record), "memory_growth")
    assert finding["function"] == "knit"
    assert "no line still holds it at the end" in finding["description"]


def test_memory_under_the_thresholds_is_not_reported() -> None:
    record = record_of(
        handler_tree("tend", "knit", 0.05, 0.08), 0.08, 0.07,
        memory_usage={"peak_memory": 15.0, "memory_delta": 5.0},
    )  # fmt: skip
    assert not by_kind(analyse(record), "memory_growth")
    # ... unless the project's alert threshold is lower
    assert by_kind(analyse(record, memory_threshold_mb=12.0), "memory_growth")


def test_a_fast_request_raises_nothing_high() -> None:
    # All of a 4 ms request is in one function: a large share, but 4 ms.
    record = record_of(handler_tree("tend", "fold", 0.0035, 0.004), 0.004, 0.004)
    results = analyse(record)
    assert all(f["severity"] in ("low", "medium") for f in results["bottleneck_analysis"])
    assert results["performance_score"] >= 90


def test_a_healthy_request_scores_high_and_has_no_findings() -> None:
    results = analyse(make_record(duration=0.02))
    assert results["bottleneck_analysis"] == []
    assert results["performance_score"] == 100
    assert "No bottleneck" in results["risk_assessment"]["recommendations"][0]


def test_records_without_statements_fall_back_to_query_counts() -> None:
    results = analyse(trees.n_plus_one_record(queries=40))
    [finding] = by_kind(results, "n_plus_one")
    assert finding["function"] == "load_order_items"
    assert finding["severity"] == "high"
    assert "40 queries" in finding["description"]


def test_spec_structure_and_risk_assessment() -> None:
    results = analyse(trees.slow_sql_record())
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
        assert suggestion["function"] in suggestion["description"]
    risks = results["risk_assessment"]
    assert risks["current_risks"][0].startswith("critical: Slow SQL")
    assert "Slow queries hold connections" in risks["potential_issues"][0]


def test_endpoint_profile_merges_statements_over_requests() -> None:
    records = []
    for repeats in (20, 40):
        record = record_of(handler_tree("tend", "gather", 0.005, 0.07, line=42), 0.07, 0.06)
        records.append(
            trees.with_statements(
                record,
                trees.statement(
                    "SELECT * FROM t WHERE k = ?", repeats, repeats * 0.001, "gather", 44
                ),
            )
        )
    profile = profiles.from_records(records, [r["function_calls"] for r in records])
    assert profile.requests == 2 and profile.tree is not None and profile.tree.n_trees == 2
    [merged] = profile.statements
    assert (merged.count, merged.requests) == (30, 2)
    finding = by_kind(analyze_profile(profile), "n_plus_one")[0]
    assert finding["function"] == "gather" and "in 2 of 2 requests" in finding["description"]


def test_score_and_severity() -> None:
    assert performance_score(0.05, []) == 100
    assert performance_score(2.0, []) == 60
    assert performance_score(1.05, []) == 80
    assert performance_score(0.05, [{"severity": "critical"}, {"severity": "low"}]) == 73
    assert performance_score(5.0, [{"severity": "critical"}] * 4) == 0
    assert [severity_for(x) for x in (0.6, 0.3, 0.1, 0.05)] == ["critical", "high", "medium", "low"]
    # Severity follows the absolute cost too: 60 % of a 10 ms request is not critical.
    assert severity_for(0.6, 0.006) == "medium"
    assert severity_for(0.6, 0.05) == "high"


def test_suggestion_rewrites() -> None:
    assert one_query_for_all("SELECT a FROM b WHERE c = ? AND d = 1") == (
        "SELECT a FROM b WHERE c IN (?, ?, ?) AND d = 1"
    )
    assert index_for("SELECT * FROM b WHERE c LIKE ? ORDER BY d") == (
        "CREATE INDEX ix_b_c_d ON b (c, d);"
    )
    assert index_for("SELECT 1") is None
