"""Reading what the collector stored, with a deadline."""

from __future__ import annotations

import time
from typing import Any


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def stored_records(
    store: Any, project_key: str, count: int, timeout: float = 15.0, **query: Any
) -> list[dict[str, Any]]:
    def fetch() -> list[dict[str, Any]]:
        found = list(store.records.find({"project_key": project_key, **query}))
        return found if len(found) >= count else []

    return wait_until(fetch, timeout) or list(
        store.records.find({"project_key": project_key, **query})
    )


def call_tree(store: Any, project_key: str, trace_id: str) -> list[dict[str, Any]]:
    document = wait_until(
        lambda: store.call_trees.find_one({"project_key": project_key, "trace_id": trace_id})
    )
    return document["nodes"] if document else []


def metric_count(
    store: Any, project_key: str, route: str, method: str = "GET", status_class: str | None = None
) -> int:
    query: dict[str, Any] = {
        "project_key": project_key,
        "route": route,
        "method": method,
        "resolution": "1m",
    }
    if status_class:
        query["status_class"] = status_class
    return sum(doc.get("count", 0) for doc in store.endpoint_metrics.find(query))
