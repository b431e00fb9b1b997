"""Small factories for SDK payloads, as docs/data-model.md describes them."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from performance_monitor.core import histogram


def make_record(
    *,
    trace_id: str | None = None,
    path: str = "/api/users/1",
    route: str = "/api/users/{id}",
    method: str = "GET",
    status: int = 200,
    duration: float = 0.1,
    app_version: str = "1.0",
    timestamp: datetime | None = None,
    nodes: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trace_id": trace_id or uuid.uuid4().hex,
        "timestamp": (timestamp or datetime.now(timezone.utc)).isoformat(),
        "request_info": {
            "method": method,
            "path": path,
            "route": route,
            "headers": {"accept": "*/*"},
        },
        "response_info": {
            "status_code": status,
            "response_size": 10,
            "content_type": "application/json",
        },
        "performance_metrics": {"total_duration": duration, "cpu_time": duration / 2},
        "function_calls": nodes if nodes is not None else simple_tree(duration),
        "version_info": {"app_version": app_version, "git_commit": "abc123"},
        "environment": {"python_version": "3.11", "framework": "flask"},
    }
    record.update(sections)
    return record


def simple_tree(duration: float, function: str = "handler") -> list[dict[str, Any]]:
    return [
        {
            "call_id": 0,
            "parent_call_id": None,
            "function_name": "wsgi_app",
            "file_path": "app.py",
            "line_number": 1,
            "duration": duration,
            "self_time": duration * 0.2,
            "depth": 0,
            "call_order": 0,
        },
        {
            "call_id": 1,
            "parent_call_id": 0,
            "function_name": function,
            "file_path": "app.py",
            "line_number": 10,
            "duration": duration * 0.8,
            "self_time": duration * 0.8,
            "depth": 1,
            "call_order": 0,
            "is_application": True,
        },
    ]


def make_metric(
    durations: list[float],
    *,
    route: str = "/api/users/{id}",
    method: str = "GET",
    status_class: str = "2xx",
    app_version: str = "1.0",
    errors: int = 0,
    start: datetime | None = None,
) -> dict[str, Any]:
    start = start or datetime.now(timezone.utc)
    buckets: dict[str, int] = {}
    for value in durations:
        key = str(histogram.bucket_index(value))
        buckets[key] = buckets.get(key, 0) + 1
    return {
        "route": route,
        "method": method,
        "status_class": status_class,
        "app_version": app_version,
        "interval_start": start.isoformat(),
        "interval_end": start.isoformat(),
        "count": len(durations),
        "errors": errors,
        "duration_sum": sum(durations),
        "duration_min": min(durations),
        "duration_max": max(durations),
        "histogram": buckets,
    }
