"""Keyset pages, bounded counts, tree lookups by id and metric writes by id: their values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from collector.ingest import validate_records
from pystrument_lab import trends
from pystrument_lab.errors import ParameterError
from pystrument_lab.store import Store
from pystrument_lab.store.listing import COUNT_LIMIT, MAX_SKIP
from pystrument_lab.store.metrics import metric_id
from pystrument_lab.store.records import record_query
from tests.utils.factories import make_metric, make_record


def _ingest(store: Store, key: str, records: list[dict]) -> None:
    valid, rejected = validate_records(records)
    assert rejected == []
    store.insert_records(key, valid)


def _walk(store: Store, size: int, **kwargs: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = store.page_records("k", limit=size, cursor=cursor, **kwargs)  # type: ignore[arg-type]
        pages.append([item["trace_id"] for item in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_cursor_pages_cover_every_record_once_even_across_ties(store: Store) -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    # t0..t6 at distinct times, then four records sharing one timestamp and one duration
    records = [
        make_record(trace_id=f"t{i}", duration=0.1 * (i + 1), timestamp=now - timedelta(minutes=i))
        for i in range(7)
    ] + [
        make_record(trace_id=f"tie{i}", duration=0.05, timestamp=now - timedelta(hours=1))
        for i in range(4)
    ]
    _ingest(store, "k", records)
    _ingest(store, "other", [make_record(trace_id="elsewhere", timestamp=now)])

    pages = _walk(store, 3)
    flat = [trace for page in pages for trace in page]
    assert flat[:7] == [f"t{i}" for i in range(7)]
    assert sorted(flat[7:]) == ["tie0", "tie1", "tie2", "tie3"]
    assert [len(page) for page in pages] == [3, 3, 3, 2]

    slowest = [t for page in _walk(store, 2, sort="-total_duration") for t in page]
    assert slowest[:7] == [f"t{i}" for i in range(6, -1, -1)]
    assert sorted(slowest[7:]) == ["tie0", "tie1", "tie2", "tie3"] and len(slowest) == 11

    fastest = [t for page in _walk(store, 4, sort="total_duration") for t in page]
    assert sorted(fastest[:4]) == ["tie0", "tie1", "tie2", "tie3"] and fastest[4:] == [
        f"t{i}" for i in range(7)
    ]
    # a filter applies on every page
    assert _walk(store, 2, since=now - timedelta(minutes=3, seconds=30)) == [
        ["t0", "t1"],
        ["t2", "t3"],
        [],
    ]


def test_cursor_of_another_sort_and_cursor_for_an_unkeyed_sort_are_refused(store: Store) -> None:
    _ingest(store, "k", [make_record(trace_id=f"r{i}") for i in range(3)])
    cursor = store.page_records("k", limit=2).next_cursor
    assert cursor is not None
    with pytest.raises(ParameterError, match="cursor"):
        store.page_records("k", limit=2, cursor=cursor, sort="-total_duration")
    with pytest.raises(ParameterError, match="cursor"):
        store.page_records("k", limit=2, cursor=cursor, sort="route")
    with pytest.raises(ParameterError, match="cursor"):
        store.page_records("k", limit=2, cursor="not-a-cursor")
    with pytest.raises(ParameterError, match="next_cursor"):
        store.page_records("k", skip=MAX_SKIP + 1)


def test_counts_stop_at_the_limit(store: Store) -> None:
    now = datetime.now(timezone.utc)
    batch = [
        make_record(trace_id=f"c{i}", status=500 if i % 2 else 200, timestamp=now, nodes=[])
        for i in range(COUNT_LIMIT + 5)
    ]
    for offset in range(0, len(batch), 500):
        _ingest(store, "k", batch[offset : offset + 500])
    everything = store.page_records("k", limit=5)
    assert (everything.count, everything.count_exact) == (COUNT_LIMIT, False)
    errors = store.page_records("k", limit=5, status_code=500)
    assert (errors.count, errors.count_exact) == ((COUNT_LIMIT + 5) // 2, True)
    assert len(errors.items) == 5 and {item["status_code"] for item in errors.items} == {500}
    assert store.find_records("k", limit=1)[1] == COUNT_LIMIT
    # every filter of the listing counts its own matches, never another project's
    assert store.page_records("k", limit=5, status_code=404).count == 0
    assert store.page_records("k", limit=5, min_duration=0.05).count == COUNT_LIMIT
    assert store.page_records("k", limit=5, min_duration=0.2).count == 0
    assert store.page_records("k", limit=5, since=now + timedelta(seconds=1)).count == 0
    _ingest(store, "j", [make_record(trace_id="j1", status=500, timestamp=now, nodes=[])])
    assert store.page_records("j", limit=5, status_code=500).count == 1
    assert store.count_records_upto(record_query("k", status_code=500), 10) == 10
    assert store.count_records_upto(record_query("k", method="post"), 10) == 0


def test_call_tree_nodes_by_record_key(store: Store) -> None:
    _ingest(store, "k", [make_record(trace_id="a"), make_record(trace_id="b", nodes=[])])
    _ingest(store, "j", [make_record(trace_id="a")])
    store.call_trees.update_one({"_id": "j/a"}, {"$set": {"nodes": []}})
    # a tree stored before tree ids were keys (and before record keys) is found by
    # its fields once the store has keyed it by its trace id
    store.call_trees.insert_one(
        {"project_key": "k", "trace_id": "legacy", "nodes": [{"function_name": "old"}]}
    )
    store.db["store_meta"].delete_one({"_id": "record_keys"})
    store.migrate_record_keys()
    found = store.call_tree_nodes("k", ["a", "b", "legacy", "missing"])
    assert sorted(found) == ["a", "b", "legacy"]
    assert [node["function_name"] for node in found["a"]] == ["wsgi_app", "handler"]
    assert found["b"] == [] and found["legacy"] == [{"function_name": "old"}]


def test_metric_writes_address_one_document_per_key(store: Store) -> None:
    start = datetime(2026, 4, 2, 9, 30, 5, tzinfo=timezone.utc)
    points = []
    for seconds, durations in ((0, [0.1, 0.3]), (20, [0.2]), (40, [0.05, 0.05])):
        point = make_metric(durations, start=start + timedelta(seconds=seconds))
        point["interval_start"] = start + timedelta(seconds=seconds)
        points.append(point)
    assert store.add_metrics("k", points) == 3
    assert store.endpoint_metrics.count_documents({"project_key": "k"}) == 3
    minute = datetime(2026, 4, 2, 9, 30, tzinfo=timezone.utc)
    key = {
        "resolution": "1m",
        "bucket_epoch": minute.timestamp(),
        "route": "/api/users/{id}",
        "method": "GET",
        "status_class": "2xx",
        "app_version": "1.0",
    }
    doc = store.endpoint_metrics.find_one({"_id": metric_id("k", key)})
    assert doc is not None and doc["bucket_start"] == minute
    assert (doc["count"], doc["duration_min"], doc["duration_max"]) == (5, 0.05, 0.3)
    assert abs(doc["duration_sum"] - 0.7) < 1e-9 and sum(doc["histogram"].values()) == 5
    # a document written before ids were keys still receives its points
    store.endpoint_metrics.delete_many({"project_key": "k", "resolution": "1h"})
    store.endpoint_metrics.insert_one(
        {"project_key": "k", "resolution": "1h", "bucket_start": datetime(2026, 4, 2, 9, 0,
         tzinfo=timezone.utc), "bucket_epoch": datetime(2026, 4, 2, 9, 0,
         tzinfo=timezone.utc).timestamp(), "route": "/api/users/{id}", "method": "GET",
         "status_class": "2xx", "app_version": "1.0", "count": 10, "errors": 0,
         "duration_sum": 1.0, "histogram": {}}
    )  # fmt: skip
    store.add_metrics("k", points[:1])
    hours = store.metric_docs("k", since=minute, until=minute + timedelta(hours=1), resolution="1h")
    assert hours == []  # the hour bucket starts at 9:00, before `since`
    hours = store.metric_docs(
        "k", since=minute - timedelta(hours=1), until=minute + timedelta(hours=1), resolution="1h"
    )
    assert [doc["count"] for doc in hours] == [12]


def _routes_points(start: datetime) -> list[dict]:
    """Points of three routes, two versions and an error class over 25 minutes."""
    points = []
    for index, (route, status, version) in enumerate(
        (("/a", "2xx", "1.0"), ("/b/{id}", "5xx", "1.0"), ("/c", "2xx", "2.0"))
    ):
        for minute in (0, 7, 24):
            durations = [0.01 * (index + 1) * (minute + 1), 0.2 * (index + 1)]
            point = make_metric(
                durations, start=start, route=route, status_class=status, app_version=version,
                errors=len(durations) if status == "5xx" else 0,
            )  # fmt: skip
            point["interval_start"] = start + timedelta(minutes=minute, seconds=index)
            points.append(point)
    return points


def test_project_metrics_sum_every_route_in_one_document_per_bucket(store: Store) -> None:
    start = datetime(2026, 4, 2, 9, 0, tzinfo=timezone.utc)
    store.add_metrics("k", _routes_points(start))
    span = trends.Window(start, start + timedelta(hours=1), timedelta(minutes=10), "10m")
    rollups = store.project_metric_docs("k", since=span.since, until=span.until, resolution="10m")
    # buckets 9:00, 9:20 for version 1.0 and 2.0: 4 documents, not one per route
    assert sorted((doc["bucket_start"].minute, doc["app_version"]) for doc in rollups) == [
        (0, "1.0"), (0, "2.0"), (20, "1.0"), (20, "2.0"),
    ]  # fmt: skip
    assert sum(doc["count"] for doc in rollups) == 18
    overview = trends.project_overview(store, "k", span)
    full = trends.project_trends(store, "k", span)
    assert overview["summary"] == full["summary"]
    assert overview["buckets"] == full["buckets"]
    assert overview["summary"]["count"] == 18 and overview["summary"]["errors"] == 6
    assert overview["summary"]["max"] == 0.75
    assert [row["count"] for row in overview["buckets"]] == [12, 0, 6, 0, 0, 0]
    # a second batch adds to the same documents
    store.add_metrics("k", _routes_points(start)[:1])
    assert trends.project_overview(store, "k", span)["summary"]["count"] == 20
    assert store.project_metrics.count_documents({"project_key": "k", "resolution": "10m"}) == 4


def test_project_metrics_of_a_store_from_before_them_are_built_once(store: Store) -> None:
    start = datetime(2026, 4, 2, 9, 0, tzinfo=timezone.utc)
    store.add_metrics("k", _routes_points(start))
    store.add_metrics("other", _routes_points(start)[3:])
    made_at_ingest = sorted(store.project_metrics.find({}, {"_id": 1, "count": 1, "histogram": 1,
                                                            "duration_min": 1, "errors": 1}),
                            key=lambda doc: doc["_id"])  # fmt: skip
    store.project_metrics.delete_many({})
    store.db["store_meta"].delete_one({"_id": "project_metrics"})
    assert store.build_project_metrics() == len(made_at_ingest) == 2 * (6 + 4 + 2)
    built = sorted(store.project_metrics.find({}, {"_id": 1, "count": 1, "histogram": 1,
                                                   "duration_min": 1, "errors": 1}),
                   key=lambda doc: doc["_id"])  # fmt: skip
    assert built == made_at_ingest
    assert store.build_project_metrics() == 0  # marked done


def test_documents_from_before_the_epoch_fields_get_them_once(store: Store) -> None:
    when = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    store.records.insert_one({"project_key": "k", "trace_id": "old", "timestamp": when})
    store.db["store_meta"].delete_many({})
    store.backfill_epochs()
    assert store.records.find_one({"trace_id": "old"})["ts"] == when.timestamp()  # type: ignore[index]
    assert [
        r["trace_id"] for r in store.find_records("k", since=when, until=when + timedelta(1))[0]
    ] == ["old"]


def test_a_duration_filter_matching_many_pages_newest_first(store: Store) -> None:
    now = datetime.now(timezone.utc)
    batch = [
        make_record(
            trace_id=f"d{i}",
            duration=0.05 if i % 4 == 0 else 0.3 + i * 1e-4,
            timestamp=now - timedelta(minutes=7 * i),
            nodes=[],
        )
        for i in range(1400)
    ]
    for offset in range(0, len(batch), 500):
        _ingest(store, "k", batch[offset : offset + 500])
    slow = [f"d{i}" for i in range(1400) if i % 4]  # newest first, 1,050 of them
    first = store.page_records("k", limit=20, min_duration=0.2)
    assert [item["trace_id"] for item in first.items] == slow[:20]
    assert (first.count, first.count_exact) == (COUNT_LIMIT, False)
    third = store.page_records("k", limit=20, skip=40, min_duration=0.2)
    assert [item["trace_id"] for item in third.items] == slow[40:60]
    second = store.page_records("k", limit=20, cursor=first.next_cursor, min_duration=0.2)
    assert [item["trace_id"] for item in second.items] == slow[20:40]
    deep = store.page_records("k", limit=20, skip=1040, min_duration=0.2)
    assert [item["trace_id"] for item in deep.items] == slow[1040:]
    rows, _ = store.find_records("k", limit=None, with_total=False, min_duration=0.2)
    assert [row["trace_id"] for row in rows] == slow
    few = store.page_records("k", limit=20, min_duration=0.4339)
    assert [item["trace_id"] for item in few.items] == [
        f"d{i}" for i in range(1339, 1400) if i % 4
    ][:20]


def test_an_index_a_newer_one_serves_is_dropped_when_the_store_opens(store: Store) -> None:
    def record_indexes() -> list[list[str]]:
        return sorted(
            [field for field, _ in info["key"]]
            for info in store.records.index_information().values()
        )

    assert ["project_key", "ts", "total_duration"] in record_indexes()
    assert ["project_key", "ts"] not in record_indexes()
    # a store from before: the (project_key, ts) index it had goes, the rest stays
    store.records.create_index([("project_key", 1), ("ts", -1)])
    before = record_indexes()
    store._indexes_ready = False
    store.ensure_indexes()
    after = record_indexes()
    assert ["project_key", "ts"] in before and ["project_key", "ts"] not in after
    assert len(after) == len(before) - 1
