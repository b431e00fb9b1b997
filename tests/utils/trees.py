"""Realistic call trees and records for the rule-engine tests."""

from __future__ import annotations

from typing import Any

from tests.utils.factories import make_record

APP = "/srv/shop/app.py"


def node(
    call_id: int,
    parent: int | None,
    name: str,
    duration: float,
    self_time: float,
    *,
    file: str = APP,
    line: int = 1,
    app: bool = True,
    depth: int = 0,
    order: int = 0,
) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "parent_call_id": parent,
        "function_name": name,
        "file_path": file,
        "line_number": line,
        "duration": duration,
        "self_time": self_time,
        "depth": depth,
        "call_order": order,
        "is_application": app,
    }


def handler_tree(
    route_fn: str,
    worker: str,
    worker_self: float,
    total: float,
    *,
    line: int = 40,
    extra: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """wsgi_app → dispatch → route_fn → worker (holding ``worker_self`` in its own frame).

    The route function and the framework frames share what ``total`` leaves over.
    """
    worker_total = worker_self + sum(n["duration"] for n in extra or [] if n["parent_call_id"] == 3)
    rest = worker_total + (total - worker_total) / 3
    nodes = [
        node(
            0,
            None,
            "wsgi_app",
            total,
            (total - rest) / 2,
            file="/usr/lib/python3/site-packages/flask/app.py",
            app=False,
        ),
        node(
            1,
            0,
            "dispatch_request",
            rest + (total - rest) / 2,
            (total - rest) / 2,
            file="/usr/lib/python3/site-packages/flask/app.py",
            app=False,
            depth=1,
        ),
        node(2, 1, route_fn, rest, rest - worker_total, line=10, depth=2),
        node(3, 2, worker, worker_total, worker_self, line=line, depth=3),
    ]
    return nodes + (extra or [])


def n_plus_one_record(queries: int = 40) -> dict[str, Any]:
    per_query = 0.0015
    execute = node(
        4,
        3,
        "execute",
        queries * per_query,
        queries * per_query,
        file="/usr/lib/python3.11/sqlite3/dbapi2.py",
        app=False,
        depth=4,
    )
    nodes = handler_tree("list_orders", "load_order_items", 0.004, 0.07, line=42, extra=[execute])
    return make_record(
        path="/api/orders",
        route="/api/orders",
        duration=0.07,
        nodes=nodes,
        performance_metrics={
            "total_duration": 0.07,
            "cpu_time": 0.06,
            "database_metrics": {
                "query_count": queries,
                "query_time": queries * per_query,
                "slow_queries": [],
            },
        },
    )


def cpu_record() -> dict[str, Any]:
    nodes = handler_tree("report", "compute_report_statistics", 0.45, 0.5, line=77)
    return make_record(
        path="/api/report",
        route="/api/report",
        duration=0.5,
        nodes=nodes,
        performance_metrics={
            "total_duration": 0.5,
            "cpu_time": 0.49,
            "database_metrics": {"query_count": 1, "query_time": 0.001},
        },
    )


def waiting_record() -> dict[str, Any]:
    wait = node(4, 3, "[await]", 0.27, 0.27, file="", app=False, depth=4)
    nodes = handler_tree(
        "recommendations", "fetch_recommendations", 0.02, 0.3, line=90, extra=[wait]
    )
    return make_record(
        path="/api/recommendations",
        route="/api/recommendations",
        duration=0.3,
        nodes=nodes,
        performance_metrics={"total_duration": 0.3, "cpu_time": 0.01},
    )


def memory_record() -> dict[str, Any]:
    nodes = handler_tree("export", "build_export_buffer", 0.05, 0.08, line=120)
    return make_record(
        path="/api/export",
        route="/api/export",
        duration=0.08,
        nodes=nodes,
        performance_metrics={
            "total_duration": 0.08,
            "cpu_time": 0.07,
            "memory_usage": {"peak_memory": 160.0, "memory_delta": 150.0},
        },
    )


def slow_sql_record() -> dict[str, Any]:
    execute = node(
        4, 3, "execute", 0.6, 0.6, file="/usr/lib/python3.11/sqlite3/dbapi2.py", app=False, depth=4
    )
    nodes = handler_tree("search", "search_products", 0.01, 0.65, line=55, extra=[execute])
    statement = "SELECT * FROM products WHERE description LIKE '%lamp%' ORDER BY price"
    return make_record(
        path="/api/search",
        route="/api/search",
        duration=0.65,
        nodes=nodes,
        performance_metrics={
            "total_duration": 0.65,
            "cpu_time": 0.6,
            "database_metrics": {
                "query_count": 2,
                "query_time": 0.61,
                "slow_queries": [{"statement": statement, "duration": 0.6}],
            },
        },
    )


def statement(
    text: str, count: int, total: float, function: str, line: int, *, file: str = APP
) -> dict[str, Any]:
    """One entry of ``database_metrics.statements.items`` as the SDK records it."""
    return {
        "statement": text,
        "count": count,
        "total_duration": total,
        "max_duration": total / count,
        "call_site": {"function": function, "file": file, "line": line},
    }


def with_statements(record: dict[str, Any], *items: dict[str, Any]) -> dict[str, Any]:
    database = record["performance_metrics"].setdefault("database_metrics", {})
    database["statements"] = {
        "items": list(items),
        "other_statements": 0,
        "other_count": 0,
        "other_duration": 0.0,
    }
    database.setdefault("query_count", sum(item["count"] for item in items))
    database.setdefault("query_time", sum(item["total_duration"] for item in items))
    return record
