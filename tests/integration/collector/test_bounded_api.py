"""The collector's bounds: cursor pages of the records listing, and capped metric batches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess


def test_records_listing_pages_by_cursor(collector: CollectorProcess, project: dict) -> None:
    key = project["project_key"]
    now = datetime.now(timezone.utc)
    records = [
        make_record(trace_id=f"c{i}", timestamp=now - timedelta(seconds=i), duration=0.01 * (i + 1))
        for i in range(7)
    ]
    answer = httpx.post(
        collector.url + "/api/v1/performance/collect",
        json={"records": records},
        headers={"X-Project-Key": key},
    ).json()
    assert answer["data"]["accepted"] == 7

    def listing(**params: object) -> dict:
        return httpx.get(
            collector.url + "/api/v1/performance/records",
            params={"project_key": key, **params},
            headers=collector.admin_headers,
        ).json()

    seen, cursor, pages = [], None, 0
    while True:
        data = listing(size=3, **({"cursor": cursor} if cursor else {}))["data"]
        seen += [item["trace_id"] for item in data["items"]]
        assert (data["total"], data["total_exact"]) == (7, True)
        cursor, pages = data["next_cursor"], pages + 1
        if cursor is None:
            break
    assert seen == [f"c{i}" for i in range(7)] and pages == 3
    first = listing(size=2, sort="-total_duration")["data"]
    second = listing(size=2, sort="-total_duration", cursor=first["next_cursor"])["data"]
    assert [item["trace_id"] for item in first["items"] + second["items"]] == [
        "c6",
        "c5",
        "c4",
        "c3",
    ]
    refused = listing(size=2, cursor=first["next_cursor"])  # a cursor of another sort
    assert refused["code"] == 10001 and "cursor" in refused["msg"]
    deep = listing(size=500, page=22)
    assert deep["code"] == 10001 and "next_cursor" in deep["msg"]


def test_metric_batches_beyond_the_caps_are_refused_whole(store: Store, tmp_path: Path) -> None:
    collector = CollectorProcess(
        store.url, store.db.name, tmp_path, MAX_METRIC_POINTS="6", MAX_METRIC_KEYS="3"
    )
    collector.start()
    try:
        key = collector.create_project("capped")["project_key"]
        start = datetime.now(timezone.utc)

        def send(points: list[dict]) -> httpx.Response:
            return httpx.post(
                collector.url + "/api/v1/performance/metrics",
                json={"metrics": points},
                headers={"X-Project-Key": key},
            )

        too_many = send([make_metric([0.1], route="/a", start=start) for _ in range(7)])
        assert (too_many.status_code, too_many.json()["code"]) == (413, 20004)
        assert "MAX_METRIC_POINTS" in too_many.json()["msg"]
        keys = send([make_metric([0.1], route=f"/r{i}", start=start) for i in range(4)])
        assert (keys.status_code, keys.json()["code"]) == (413, 20004)
        assert "MAX_METRIC_KEYS" in keys.json()["msg"]
        assert store.endpoint_metrics.count_documents({"project_key": key}) == 0
        within = send([make_metric([0.1, 0.2], route=f"/r{i % 3}", start=start) for i in range(6)])
        assert within.json()["data"] == {"accepted": 6, "duplicate_batch": False}
        minutes = store.endpoint_metrics.find({"project_key": key, "resolution": "1m"})
        assert sorted((doc["route"], doc["count"]) for doc in minutes) == [
            ("/r0", 4),
            ("/r1", 4),
            ("/r2", 4),
        ]
    finally:
        collector.stop()
