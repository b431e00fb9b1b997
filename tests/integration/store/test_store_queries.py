"""Pin every query the store module runs to the values it must return."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from collector.ingest import validate_records
from pystrument_lab.embedded import EmbeddedServer
from pystrument_lab.errors import ProjectNameExists, ProjectNotFound
from pystrument_lab.store import INDEXES, Store, core
from pystrument_lab.store.schema import bounded_count
from tests.utils.factories import make_metric, make_record


def _ingest(store: Store, key: str, records: list[dict]) -> tuple[int, int]:
    valid, rejected = validate_records(records)
    assert rejected == []
    return store.insert_records(key, valid)


def test_indexes_are_created_idempotently(store: Store) -> None:
    store._indexes_ready = False
    store.ensure_indexes()
    for name, indexes in INDEXES.items():
        info = store.db[name].index_information().values()
        # Compare field lists: the embedded server does not keep index directions.
        stored = {
            (tuple(field for field, _ in entry["key"]), bool(entry.get("unique"))) for entry in info
        }
        for index in indexes:
            wanted = (tuple(index.document["key"]), bool(index.document.get("unique")))
            assert wanted in stored


def test_projects(store: Store) -> None:
    first = store.create_project("a", framework="flask")
    store.create_project("b")
    with pytest.raises(ProjectNameExists):
        store.create_project("a")
    assert store.get_project(first["project_key"])["name"] == "a"
    with pytest.raises(ProjectNotFound):
        store.get_project("pk_missing")
    updated = store.update_project(
        first["project_key"], {"config.sampling_rate": 0.9, "status": "inactive"}
    )
    assert updated["config"]["sampling_rate"] == 0.9 and updated["config"]["enabled"] is True
    # flags written by $set read back as booleans everywhere a project is shown
    store.update_project(first["project_key"], {"config.enabled": False})
    flags = store.update_project(first["project_key"], {"config.auto_analysis": True})["config"]
    assert (flags["enabled"], flags["auto_analysis"]) == (False, True)
    shown = store.get_project(first["project_key"])["config"]
    assert shown["enabled"] is False and shown["auto_analysis"] is True
    assert store.project_by_name("a")["config"]["auto_analysis"] is True  # type: ignore[index]
    store.update_project(first["project_key"], {"config.enabled": True})
    items, total = store.list_projects(status="inactive")
    assert total == 1 and items[0]["name"] == "a"
    assert (
        isinstance(updated["updated_at"], datetime) and updated["updated_at"] >= first["updated_at"]
    )
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    store.touch_project(first["project_key"])
    last = store.get_project(first["project_key"])["last_activity"]
    assert isinstance(last, datetime) and before <= last <= datetime.now(timezone.utc) + timedelta(
        seconds=1
    )


def test_record_filters_and_sorts(store: Store) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records = [
        make_record(trace_id="a", route="/x", duration=0.3, timestamp=now - timedelta(seconds=1)),
        make_record(
            trace_id="b", route="/x", duration=0.1, status=404, timestamp=now - timedelta(seconds=2)
        ),
        make_record(
            trace_id="c",
            route="/y",
            method="PUT",
            duration=0.2,
            app_version="2",
            timestamp=now - timedelta(hours=2),
        ),
    ]
    assert _ingest(store, "k", records) == (3, 0)
    assert _ingest(store, "k", records[:1]) == (0, 1)

    def ids(**kwargs: object) -> list[str]:
        return [item["trace_id"] for item in store.find_records("k", **kwargs)[0]]  # type: ignore[arg-type]

    assert ids() == ["a", "b", "c"]
    assert ids(route="/x", sort="total_duration") == ["b", "a"]
    assert ids(method="put") == ["c"]
    assert ids(status_code=404) == ["b"]
    assert ids(app_version="2") == ["c"]
    assert ids(since=now - timedelta(hours=1)) == ["a", "b"]
    assert ids(until=now - timedelta(hours=1)) == ["c"]
    assert ids(min_duration=0.2, sort="-total_duration") == ["a", "c"]
    assert ids(skip=1, limit=1) == ["b"]
    assert store.find_records("k", route="/x")[1] == 2
    assert store.get_record("a", "k")["timestamp"] == now - timedelta(seconds=1)
    tree = store.get_call_tree("k", "a")
    assert tree is not None and tree["nodes"][1]["function_name"] == "handler"
    assert [doc["trace_id"] for doc in store.iter_call_trees("k", route="/x")] == ["a", "b"]


def test_metrics_fold_into_minutes_and_hours(store: Store) -> None:
    start = datetime(2026, 3, 1, 10, 0, 10, tzinfo=timezone.utc)
    store.add_metrics("k", [_point([0.1, 0.2], start)])
    store.add_metrics("k", [_point([0.05, 0.4, 0.4], start + timedelta(seconds=20))])
    store.add_metrics("k", [_point([1.0], start + timedelta(minutes=5))])
    store.add_metrics("k", [_point([2.0], start + timedelta(minutes=5), version="2.0")])
    minutes = store.metric_docs(
        "k", since=start - timedelta(minutes=1), until=start + timedelta(hours=1)
    )
    first = next(
        doc
        for doc in minutes
        if doc["bucket_start"] == datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    )
    assert first["count"] == 5 and first["duration_min"] == 0.05 and first["duration_max"] == 0.4
    assert abs(first["duration_sum"] - 1.15) < 1e-9
    assert sum(first["histogram"].values()) == 5
    hours = store.metric_docs(
        "k", since=start - timedelta(hours=1), until=start + timedelta(hours=1), resolution="1h"
    )
    assert sorted(doc["count"] for doc in hours) == [1, 6]
    assert (
        store.metric_docs("k", since=start, until=start + timedelta(hours=1), app_version="2.0")[0][
            "count"
        ]
        == 1
    )
    assert store.app_versions("k") == ["1.0", "2.0"]
    assert store.claim_metric_batch("k", "b") is True
    assert store.claim_metric_batch("k", "b") is False


def _point(durations: list[float], start: datetime, version: str = "1.0") -> dict:
    point = make_metric(durations, start=start, app_version=version)
    point["interval_start"] = start
    return point


def test_retention_deletes_only_older_documents(store: Store) -> None:
    now = datetime.now(timezone.utc)
    cutoff = now - timedelta(days=30)
    _ingest(
        store,
        "k",
        [
            make_record(trace_id="old", timestamp=cutoff - timedelta(minutes=1)),
            make_record(trace_id="new", timestamp=cutoff + timedelta(minutes=1)),
        ],
    )
    store.add_metrics(
        "k",
        [_point([0.1], cutoff - timedelta(hours=2)), _point([0.1], cutoff + timedelta(hours=2))],
    )
    removed = store.delete_older_than(cutoff)
    assert removed["performance_records"] == 1 and removed["call_trees"] == 1
    # the old point's three documents, and the newer point's minute and
    # 10-minute documents, which are kept for 2 and 14 days only
    assert removed["endpoint_metrics"] == 5
    assert removed["project_metrics"] == 5  # the same for the project's roll-ups
    assert store.project_metrics.distinct("resolution") == ["1h"]
    assert store.records.distinct("trace_id") == ["new"]
    assert store.call_trees.distinct("trace_id") == ["new"]
    assert store.endpoint_metrics.distinct("resolution") == ["1h"]


def test_retention_deletes_in_chunks_oldest_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "DELETE_CHUNK", 3)
    monkeypatch.setattr(core, "DELETE_PAUSE", 0.0)
    now = datetime.now(timezone.utc)
    cutoff = now - timedelta(days=30)
    older = [
        make_record(trace_id=f"old{i}", timestamp=cutoff - timedelta(minutes=i + 1), nodes=[])
        for i in range(7)
    ]
    # four records of one instant: more than a chunk share the chunk's bound
    tied = [
        make_record(trace_id=f"tie{i}", timestamp=cutoff - timedelta(hours=5), nodes=[])
        for i in range(4)
    ]
    newer = [
        make_record(trace_id=f"new{i}", timestamp=cutoff + timedelta(seconds=i + 1), nodes=[])
        for i in range(3)
    ]
    _ingest(store, "k", older + tied + newer)
    _ingest(store, "j", [make_record(trace_id="j-old", timestamp=cutoff - timedelta(days=1))])
    calls: list[dict] = []
    delete_many = store.records.delete_many

    def counting(query: dict, *args: object, **kwargs: object) -> object:
        result = delete_many(query, *args, **kwargs)
        calls.append({"query": query, "deleted": result.deleted_count})
        return result

    monkeypatch.setattr(store.records, "delete_many", counting)
    removed = store.delete_older_than(cutoff)
    assert removed["performance_records"] == 12 and removed["call_trees"] == 12
    assert sorted(store.records.distinct("trace_id")) == ["new0", "new1", "new2"]
    # every chunk removed at most the chunk's size, except the one instant of four
    assert all(call["deleted"] <= 4 for call in calls) and len(calls) >= 4
    assert store.delete_older_than(cutoff)["performance_records"] == 0


def test_bounded_count_counts_up_to_its_bound(store: Store) -> None:
    now = datetime.now(timezone.utc)
    _ingest(
        store,
        "k",
        [
            make_record(trace_id=f"b{i}", status=500 if i < 4 else 200, timestamp=now, nodes=[])
            for i in range(9)
        ],
    )
    errors = {"project_key": {"$eq": "k"}, "status_code": {"$eq": 500}}
    assert [bounded_count(store.records, errors, bound) for bound in (0, 1, 3, 4, 5, 100)] == [
        0,
        1,
        3,
        4,
        4,
        4,
    ]
    assert bounded_count(store.records, {"project_key": {"$eq": "k"}}, 9) == 9
    assert bounded_count(store.records, {"project_key": {"$eq": "k"}}, 8) == 8
    assert bounded_count(store.records, {"project_key": {"$eq": "nobody"}}, 5) == 0


def test_finer_metric_documents_are_kept_for_less_time(store: Store) -> None:
    now = datetime.now(timezone.utc)
    ages = {
        "1h-old": timedelta(hours=1),
        "3d-old": timedelta(days=3),
        "20d-old": timedelta(days=20),
    }
    for version, age in ages.items():
        store.add_metrics("k", [_point([0.1], now - age, version)])
    removed = store.delete_older_than(now - timedelta(days=30))
    assert removed["endpoint_metrics"] == 3  # 3d: its minute; 20d: its minute and 10-minute
    kept = {
        version: sorted(store.endpoint_metrics.distinct("resolution", {"app_version": version}))
        for version in ages
    }
    assert kept == {"1h-old": ["10m", "1h", "1m"], "3d-old": ["10m", "1h"], "20d-old": ["1h"]}


def test_embedded_server_keeps_data_across_restart(private_server: EmbeddedServer) -> None:
    url = private_server.ensure_running()
    handle = Store(url, database="persist")
    handle.create_project("kept")
    handle.close()
    status = private_server.status()
    assert status["running"] is True and status["healthy"] is True
    assert private_server.stop() is True
    assert private_server.status()["running"] is False
    again = Store(private_server.ensure_running(), database="persist")
    assert [p["name"] for p in again.list_projects()[0]] == ["kept"]
    # A second handle reuses the running server instead of starting another.
    assert EmbeddedServer(private_server.home, port=private_server.port).ensure_running() == url
    again.close()
