"""A project with known numbers, sent through the real collector, for the report tests.

Two versions: 1.0 three hours ago, 1.1 twenty minutes ago. ``GET /api/search``
regresses from 100 ms to 800 ms (``run_query`` is where the time went), ``POST
/api/orders`` (1.1 only) fails 5 of 20 requests, ``GET /api/users/{id}`` stays
at 50 ms.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess

SEARCH = "/api/search"
USERS = "/api/users/{id}"
ORDERS = "/api/orders"


def _send(collector: CollectorProcess, key: str, path: str, body: dict[str, Any]) -> None:
    answer = httpx.post(
        collector.url + path, json=body, headers={"X-Project-Key": key}, timeout=30
    ).json()
    assert answer["code"] == 0, answer


def _search_tree(duration: float, query_time: float) -> list[dict[str, Any]]:
    def node(call_id: int, parent: int | None, name: str, total: float, own: float) -> dict:
        depth = 0 if parent is None else call_id
        return {
            "call_id": call_id,
            "parent_call_id": parent,
            "function_name": name,
            "file_path": "shop/search.py",
            "line_number": 10 * (call_id + 1),
            "duration": total,
            "self_time": own,
            "depth": depth,
            "call_order": 0,
            "is_application": call_id > 0,
        }

    view = duration - 0.01
    return [
        node(0, None, "wsgi_app", duration, 0.01),
        node(1, 0, "search_view", view, view - query_time),
        node(2, 1, "run_query", query_time, query_time),
    ]


def seed_shop(collector: CollectorProcess, key: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    old, new = now - timedelta(hours=3), now - timedelta(minutes=20)
    points = [
        make_metric([0.1] * 40, route=SEARCH, app_version="1.0", start=old),
        make_metric([0.05] * 50, route=USERS, app_version="1.0", start=old),
        make_metric([0.8] * 40, route=SEARCH, app_version="1.1", start=new),
        make_metric([0.05] * 50, route=USERS, app_version="1.1", start=new),
        make_metric([0.2] * 15, route=ORDERS, method="POST", app_version="1.1", start=new),
        make_metric(
            [0.2] * 5,
            route=ORDERS,
            method="POST",
            app_version="1.1",
            start=new,
            status_class="5xx",
            errors=5,
        ),
    ]
    for point in points:
        _send(
            collector,
            key,
            "/api/v1/performance/metrics",
            {"batch_id": uuid.uuid4().hex, "metrics": [point]},
        )
    records = []
    for version, when, duration, query_time in (("1.0", old, 0.1, 0.06), ("1.1", new, 0.8, 0.7)):
        for i in range(5):
            records.append(
                make_record(
                    path="/api/search",
                    route=SEARCH,
                    duration=duration,
                    app_version=version,
                    timestamp=when + timedelta(seconds=i),
                    nodes=_search_tree(duration, query_time),
                )
            )
    for _ in range(3):
        records.append(make_record(duration=0.05, app_version="1.1", timestamp=new))
    for i in range(2):
        records.append(
            make_record(
                path="/api/orders",
                route=ORDERS,
                method="POST",
                status=500,
                duration=0.2,
                app_version="1.1",
                timestamp=new + timedelta(seconds=i),
            )
        )
    _send(collector, key, "/api/v1/performance/collect", {"records": records})
    return {"now": now, "records": len(records)}


@pytest.fixture
def shop(collector: CollectorProcess, store: Store) -> dict[str, Any]:
    project = collector.create_project(
        "shop-" + uuid.uuid4().hex[:6], framework="flask", sampling_rate=1.0
    )
    seeded = seed_shop(collector, project["project_key"])
    return {**project, **seeded}
