from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import httpx
from performance_monitor.core import histogram

from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess


def _exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(Fraction(str(q)) / 100 * len(ordered))) - 1]


def _send_metrics(
    collector: CollectorProcess, key: str, points: list[dict], batch_id: str | None = None
) -> dict:
    body = {"batch_id": batch_id or uuid.uuid4().hex, "metrics": points}
    return httpx.post(
        collector.url + "/api/v1/performance/metrics", json=body, headers={"X-Project-Key": key}
    ).json()


def test_trends_percentiles_match_the_sent_durations(
    collector: CollectorProcess, project: dict
) -> None:
    key = project["project_key"]
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    users = [rng.lognormvariate(-3, 0.8) for _ in range(600)]
    orders = [rng.uniform(0.2, 0.4) for _ in range(100)]
    # Several flushes, like several SDK processes, inside the last hour.
    for chunk in range(3):
        part = users[chunk * 200 : (chunk + 1) * 200]
        start = now - timedelta(minutes=10 * chunk + 1)
        answer = _send_metrics(collector, key, [make_metric(part, start=start)])
        assert answer["data"] == {"accepted": 1, "duplicate_batch": False}
    _send_metrics(
        collector,
        key,
        [
            make_metric(
                orders,
                route="/orders",
                method="POST",
                status_class="5xx",
                errors=100,
                start=now - timedelta(minutes=2),
            )
        ],
    )

    data = httpx.get(
        f"{collector.url}/api/v1/performance/trends/{key}",
        params={"time_range": "1h"},
        headers=collector.admin_headers,
    ).json()["data"]
    assert data["resolution"] == "1m" and data["bucket_seconds"] == 60
    assert data["percentile_relative_error"] == round(histogram.RELATIVE_ERROR, 4)
    endpoints = {row["route"]: row for row in data["endpoints"]}
    users_row = endpoints["/api/users/{id}"]
    assert users_row["count"] == 600 and users_row["errors"] == 0
    for q in (50, 95, 99):
        exact = _exact_percentile(users, q)
        assert abs(users_row[f"p{q}"] - exact) / exact <= histogram.RELATIVE_ERROR + 1e-9
    assert math.isclose(users_row["max"], max(users)) and math.isclose(users_row["min"], min(users))
    assert math.isclose(users_row["avg"], sum(users) / 600)
    assert endpoints["/orders"]["error_rate"] == 1.0 and endpoints["/orders"]["method"] == "POST"
    summary = data["summary"]
    assert summary["count"] == 700 and math.isclose(summary["error_rate"], 100 / 700)
    assert sum(bucket["count"] for bucket in data["buckets"]) == 700
    assert len([b for b in data["buckets"] if b["count"]]) == 4


def test_resent_metric_batch_is_ignored(
    collector: CollectorProcess, project: dict, store: Store
) -> None:
    key = project["project_key"]
    point = make_metric([0.1, 0.2, 0.3])
    assert (
        _send_metrics(collector, key, [point], batch_id="b-1")["data"]["duplicate_batch"] is False
    )
    assert _send_metrics(collector, key, [point], batch_id="b-1")["data"] == {
        "accepted": 0,
        "duplicate_batch": True,
    }
    minute = store.endpoint_metrics.find_one({"project_key": key, "resolution": "1m"})
    assert minute["count"] == 3
    assert store.endpoint_metrics.count_documents({"project_key": key}) == 3  # one per resolution


def test_invalid_metrics_are_refused(collector: CollectorProcess, project: dict) -> None:
    point = make_metric([0.1, 0.2])
    point["count"] = 5
    answer = _send_metrics(collector, project["project_key"], [point])
    assert answer["code"] == 20004 and "histogram counts" in answer["msg"]
    point = make_metric([0.1])
    point["status_class"] = "7xx"
    assert _send_metrics(collector, project["project_key"], [point])["msg"].startswith(
        "metrics[0].status_class"
    )


def test_records_filters_sort_and_pages(collector: CollectorProcess, project: dict) -> None:
    key = project["project_key"]
    now = datetime.now(timezone.utc)
    records = [
        make_record(
            trace_id="r1", route="/a", path="/a", duration=0.5, timestamp=now - timedelta(minutes=1)
        ),
        make_record(
            trace_id="r2",
            route="/a",
            path="/a",
            duration=1.5,
            status=500,
            timestamp=now - timedelta(minutes=2),
        ),
        make_record(
            trace_id="r3",
            route="/b",
            path="/b",
            method="POST",
            duration=0.2,
            app_version="2.0",
            timestamp=now - timedelta(minutes=3),
        ),
        make_record(
            trace_id="r4", route="/b", path="/b", duration=0.9, timestamp=now - timedelta(days=2)
        ),
    ]
    httpx.post(
        collector.url + "/api/v1/performance/collect",
        json={"records": records},
        headers={"X-Project-Key": key},
    )

    def query(**params: object) -> dict:
        response = httpx.get(
            collector.url + "/api/v1/performance/records",
            params={"project_key": key, **params},
            headers=collector.admin_headers,
        )
        return response.json()

    def ids(**params: object) -> list[str]:
        return [item["trace_id"] for item in query(**params)["data"]["items"]]

    assert ids() == ["r1", "r2", "r3", "r4"]
    assert ids(route="/a") == ["r1", "r2"]
    assert ids(method="post") == ["r3"]
    assert ids(status_code=500) == ["r2"]
    assert ids(app_version="2.0") == ["r3"]
    assert ids(min_duration=0.8) == ["r2", "r4"]
    assert ids(time_range="1h") == ["r1", "r2", "r3"]
    assert ids(sort="-total_duration") == ["r2", "r4", "r1", "r3"]
    assert ids(sort="total_duration", size=2, page=2) == ["r4", "r2"]
    assert query(size=2)["data"]["total"] == 4
    assert query(sort="-password")["code"] == 10001
    assert query(size=0)["code"] == 10001

    detail = httpx.get(
        f"{collector.url}/api/v1/performance/records/{key}/r1", headers=collector.admin_headers
    ).json()
    assert detail["data"]["function_calls"][1]["function_name"] == "handler"
    missing = httpx.get(
        f"{collector.url}/api/v1/performance/records/{key}/zzz", headers=collector.admin_headers
    )
    assert missing.status_code == 404


def test_query_endpoints_check_project_and_range(
    collector: CollectorProcess, project: dict
) -> None:
    headers = collector.admin_headers
    unknown = httpx.get(collector.url + "/api/v1/performance/trends/pk_nope", headers=headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20001)
    bad_range = httpx.get(
        f"{collector.url}/api/v1/performance/trends/{project['project_key']}",
        params={"time_range": "forever"},
        headers=headers,
    )
    assert bad_range.json()["code"] == 10001 and "time range" in bad_range.json()["msg"]
    week = httpx.get(
        f"{collector.url}/api/v1/performance/trends/{project['project_key']}",
        params={"time_range": "7d"},
        headers=headers,
    ).json()["data"]
    assert (
        week["resolution"] == "1h"
        and week["bucket_seconds"] == 3600
        and week["summary"]["count"] == 0
    )
