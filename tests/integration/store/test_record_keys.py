"""Record identity: trace id plus span id, records stored before span ids, and their migration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from collector.ingest import validate_records
from pystrument_lab.analysis import analyze
from pystrument_lab.errors import ParameterError
from pystrument_lab.loaders import Lab
from pystrument_lab.store import Store, split_record
from tests.utils.factories import make_record

TRACE = "3d9c1f0e2b8a4c76950e1a2b3c4d5e6f"


def _ingest(store: Store, key: str, records: list[dict[str, Any]]) -> tuple[int, int]:
    valid, rejected = validate_records(records)
    assert rejected == []
    return store.insert_records(key, valid)


def _unique_keys(collection: Any) -> list[list[str]]:
    return sorted(
        [field for field, _ in info["key"]]
        for info in collection.index_information().values()
        if info.get("unique")
    )


def test_records_of_one_trace_are_told_apart_by_span(store: Store) -> None:
    first = make_record(trace_id=TRACE, span_id="1111aaaa2222bbbb", path="/a")
    second = make_record(trace_id=TRACE, span_id="3333cccc4444dddd", path="/b")
    second["function_calls"][1]["function_name"] = "other_handler"
    assert _ingest(store, "k", [first, second]) == (2, 0)
    assert _ingest(store, "k", [second, first]) == (0, 2)  # a resend
    assert _ingest(store, "j", [first]) == (1, 0)  # another project has its own records

    keys = [f"{TRACE}-1111aaaa2222bbbb", f"{TRACE}-3333cccc4444dddd"]
    assert [r["record_key"] for r in store.trace_records(TRACE, "k")] == keys
    assert len(store.trace_records(TRACE)) == 3
    assert store.resolve_record(keys[1], "k")["path"] == "/b"
    nodes = store.call_tree_nodes("k", keys)
    assert [n["function_name"] for n in nodes[keys[0]]] == ["wsgi_app", "handler"]
    assert [n["function_name"] for n in nodes[keys[1]]] == ["wsgi_app", "other_handler"]
    assert store.get_call_tree("k", keys[1])["nodes"][1]["function_name"] == "other_handler"
    listed = store.page_records("k", trace_id=TRACE, limit=10)
    assert sorted(item["path"] for item in listed.items) == ["/a", "/b"]
    assert listed.count == 2

    with pytest.raises(ParameterError) as ambiguous:
        store.resolve_record(TRACE, "k")
    assert ambiguous.value.status == 409
    assert [r["record_key"] for r in ambiguous.value.data["records"]] == keys
    with pytest.raises(ParameterError) as missing:
        store.resolve_record("f" * 32, "k")
    assert missing.value.status == 404


def test_records_without_span_are_keyed_by_trace_id(store: Store) -> None:
    plain = make_record(trace_id="cafe" * 8)
    assert _ingest(store, "k", [plain]) == (1, 0)
    assert _ingest(store, "k", [make_record(trace_id="cafe" * 8, path="/again")]) == (0, 1)
    found = store.resolve_record("cafe" * 8, "k")
    assert (found["record_key"], found["path"]) == ("cafe" * 8, "/api/users/1")
    assert store.call_trees.find_one({"_id": "k/" + "cafe" * 8}) is not None


@pytest.fixture
def old_store(mongo_url: str) -> Iterator[Store]:
    """A database laid out as before span ids: unique (project_key, trace_id) indexes,
    documents without record keys, an analysis naming its record by trace id."""
    handle = Store(mongo_url, database="test_" + uuid.uuid4().hex[:12])
    for collection in (handle.records, handle.call_trees):
        collection.create_index([("project_key", 1), ("trace_id", 1)], unique=True)
    for trace_id, path in (("old-1", "/first"), ("old-2", "/second")):
        valid, _ = validate_records([make_record(trace_id=trace_id, path=path, duration=1.5)])
        lean, tree = split_record("pk", valid[0])
        del lean["record_key"], tree["record_key"]
        handle.records.insert_one(lean)
        handle.call_trees.insert_one(tree)
    handle.analyses.insert_one(
        {"project_key": "pk", "trace_id": "old-1", "status": "completed", "target": {}}
    )
    yield handle
    handle.client.drop_database(handle.db.name)
    handle.close()


def test_records_stored_before_span_ids_still_load_open_and_analyse(old_store: Store) -> None:
    old_store.ensure_indexes()
    assert ["project_key", "trace_id"] not in _unique_keys(old_store.records)
    assert ["project_key", "record_key"] in _unique_keys(old_store.records)
    assert ["project_key", "record_key"] in _unique_keys(old_store.call_trees)
    assert sorted(r["record_key"] for r in old_store.records.find()) == ["old-1", "old-2"]
    assert old_store.has_analysis("pk", "old-1") and not old_store.has_analysis("pk", "old-2")

    lab = Lab(old_store)
    opened = lab.record("old-2")
    assert (opened.record_key, opened.data["path"]) == ("old-2", "/second")
    assert [n.function_name for n in opened.tree.root.children] == ["handler"]
    assert lab.records({"project_key": "pk"})["record_key"].sort().to_list() == ["old-1", "old-2"]
    report = analyze("old-1", service="rules", store=old_store, save=False)
    assert (report["status"], report["record_key"]) == ("completed", "old-1")

    # Two requests of one trace now make two records beside the old ones; the
    # migration runs once, and a second start changes nothing.
    spans = [
        make_record(trace_id=TRACE, span_id=s) for s in ("00000000000000a1", "00000000000000b2")
    ]
    assert _ingest(old_store, "pk", spans) == (2, 0)
    again = Store(old_store.url, database=old_store.db.name)
    again.ensure_indexes()
    assert _ingest(again, "pk", spans) == (0, 2)
    assert again.records.count_documents({"project_key": "pk"}) == 4
    again.close()
