"""Memory tracking on a real server: deep recursion under tracemalloc stays profiled and finishes."""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import call_tree, stored_records
from .servers import serve_wsgi


def _lambda(depth: int) -> int:
    return 1 if depth == 0 else _lambda(depth - 1) + 1


def _rho(calls: int, depth: int) -> int:
    total = 0
    for _ in range(calls):
        total += _lambda(depth)
    return total


def test_deep_recursion_under_memory_tracking_completes_with_its_tree(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    # pyinstrument builds one string per frame per sample, tracemalloc walks the
    # whole stack on each of those allocations: ~1 ms a sample 150 frames down.
    # At a 1 ms interval every call then sampled again (this request ran for
    # minutes); the profiler now lengthens its interval instead.
    from flask import Flask
    from performance_monitor.core.monitor import all_monitors
    from performance_monitor.flask import PerformanceMiddleware

    app = Flask("recursion")

    @app.route("/r/<int:calls>")
    def sigma(calls: int) -> dict[str, int]:
        return {"total": _rho(calls, 150)}

    PerformanceMiddleware(app, {**sdk_settings, "track_memory": True})
    with serve_wsgi(app) as url:
        response = httpx.get(f"{url}/r/1500", timeout=60)
        assert response.json() == {"total": 1500 * 151}
        for monitor in all_monitors():
            assert monitor.flush(10)
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["status_code"] == 200
    assert "memory_usage" in record["performance_metrics"]
    nodes = call_tree(store, project["project_key"], record["trace_id"])
    by_id = {node["call_id"]: node for node in nodes}
    recursive = [node for node in nodes if node["function_name"] == "_lambda"]
    assert recursive and all(node["file_path"] == __file__ for node in recursive)
    assert any(by_id[n["parent_call_id"]]["function_name"] == "_rho" for n in recursive)

    def chain(node: dict[str, Any]) -> int:
        length = 0
        while node["function_name"] == "_lambda":
            length, node = length + 1, by_id[node["parent_call_id"]]
        return length

    # The tree keeps the recursion itself, not only its top.
    assert max(chain(node) for node in recursive) >= 100
    duration = record["performance_metrics"]["total_duration"]
    under_rho = sum(
        n["duration"] for n in recursive if by_id[n["parent_call_id"]]["function_name"] == "_rho"
    )
    assert under_rho >= 0.5 * duration
