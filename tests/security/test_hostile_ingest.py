"""Hostile SDK bodies against a running collector: each is refused with its code or stored clean.

Every case leaves the store whole: a refused record leaves neither record nor
tree, and the valid records of a batch are stored once, also on resend.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pystrument_lab import Lab
from pystrument_lab.store import Store
from tests.utils.audit import assert_envelope, new_project, running_collector
from tests.utils.factories import make_metric, make_record, simple_tree
from tests.utils.services import CollectorProcess

COLLECT = "/api/v1/performance/collect"
METRICS = "/api/v1/performance/metrics"


@pytest.fixture(scope="module")
def collector(
    mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    with running_collector(mongo_url, tmp_path_factory.mktemp("hostile")) as process:
        yield process


@pytest.fixture(scope="module")
def store(collector: CollectorProcess) -> Iterator[Store]:
    handle = Store(
        collector.env["PYSTRUMENT_MONGODB_URL"], database=collector.env["PYSTRUMENT_DATABASE"]
    )
    yield handle
    handle.close()


@pytest.fixture
def key(collector: CollectorProcess) -> str:
    return str(new_project(collector, "hostile")["project_key"])


def send(
    collector: CollectorProcess,
    body: bytes | Any,
    key: str | None,
    path: str = COLLECT,
    **headers: str,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **headers}
    if key is not None:
        sent["X-Project-Key"] = key
    return httpx.post(collector.url + path, content=raw, headers=sent, timeout=60)


def stored(store: Store, key: str) -> tuple[list[str], list[str]]:
    records = sorted(d["trace_id"] for d in store.records.find({"project_key": key}))
    trees = sorted(d["trace_id"] for d in store.call_trees.find({"project_key": key}))
    return records, trees


def test_anonymous_gzip_bomb_is_refused_small_and_health_keeps_answering(
    collector: CollectorProcess,
) -> None:
    inflated = json.dumps({"records": [make_record()] * 1}).encode() + b" " * (10 * 1024 * 1024)
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 64 * 1024
    health_times: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            httpx.get(collector.url + "/health", timeout=30)
            health_times.append(time.perf_counter() - began)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        answers = [send(collector, bomb, None, **{"Content-Encoding": "gzip"}) for _ in range(5)]
    finally:
        stop.set()
        prober.join()
    for answer in answers:
        assert answer.status_code == 413
        assert assert_envelope(answer)["code"] == 10001
    # An anonymous body inflates at most to 256 KiB before it is refused: the
    # event loop never waits on it for long.
    assert health_times and max(health_times) < 1.0, health_times


def test_a_known_key_is_checked_before_the_body(collector: CollectorProcess) -> None:
    answer = send(collector, b"[" * 100_000, "pk_not_a_known_key")
    assert (answer.status_code, assert_envelope(answer)["code"]) == (401, 20003)


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deep_json_is_a_parameter_error(collector: CollectorProcess, key: str, depth: int) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        answer = send(collector, body, key)
        assert answer.status_code == 400, answer.text
        assert "nests deeper than 64" in assert_envelope(answer)["msg"]


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"99999999999999999999"]
)
def test_numbers_beyond_range_are_refused(
    collector: CollectorProcess, store: Store, key: str, literal: bytes
) -> None:
    record = make_record(trace_id="numbers")
    text = json.dumps(record).replace('"total_duration": 0.1', '"total_duration": 0.1, "x": 0')
    text = text.replace(
        '"cpu_time": 0.05', '"cpu_time": 0.05, "memory_usage": {"peak_memory": PLACE}'
    )
    answer = send(collector, text.replace("PLACE", literal.decode()).encode(), key)
    assert answer.status_code == 422, answer.text
    body = assert_envelope(answer)
    assert body["code"] == 20004
    assert body["data"]["rejected"][0]["field"] == "performance_metrics.memory_usage.peak_memory"
    assert stored(store, key) == ([], [])


def test_a_lone_surrogate_in_any_key_or_value_is_stored_replaced(
    collector: CollectorProcess, store: Store, key: str
) -> None:
    record = make_record(trace_id="surrogate")
    record["request_info"]["headers"] = {"\udcff": "v\ud800", "x-ok": "\udfff"}
    record["tags"] = {"t\udcff": "x"}
    record["function_calls"][1]["function_name"] = "handler\ud83d"
    body = json.dumps(record).encode()  # json escapes them as \udcff
    answer = send(collector, body, key)
    assert assert_envelope(answer)["data"]["accepted"] == 1, answer.text
    doc = store.records.find_one({"project_key": key, "trace_id": "surrogate"})
    assert doc is not None
    assert doc["request_info"]["headers"] == {"\ufffd": "v\ufffd", "x-ok": "\ufffd"}
    assert doc["tags"] == {"t\ufffd": "x"}
    tree = store.call_trees.find_one({"project_key": key, "trace_id": "surrogate"})
    assert tree is not None and tree["nodes"][1]["function_name"] == "handler\ufffd"


def test_a_batch_with_one_bad_record_stores_the_rest_once_and_resends_succeed(
    collector: CollectorProcess, store: Store, key: str
) -> None:
    good = [make_record(trace_id=f"good-{i}") for i in range(3)]
    bad = make_record(trace_id="bad")
    bad["performance_metrics"]["memory_usage"] = {"peak_memory": 10**16}
    batch = {"records": [*good, bad]}
    for attempt in range(3):
        answer = send(collector, batch, key)
        body = assert_envelope(answer)
        assert answer.status_code == 200, answer.text
        assert body["data"]["accepted"] == (3 if attempt == 0 else 0)
        assert body["data"]["duplicates"] == (0 if attempt == 0 else 3)
        assert [r["index"] for r in body["data"]["rejected"]] == [3]
        assert body["data"]["rejected"][0]["field"].endswith("peak_memory")
    ids = sorted(r["trace_id"] for r in good)
    assert stored(store, key) == (ids, ids)


def node(call_id: int, parent: int | None, depth: int) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "parent_call_id": parent,
        "function_name": f"f{call_id}",
        "duration": 0.1,
        "depth": depth,
    }


MALFORMED_TREES = {
    "cycle": [node(0, None, 0), node(1, 2, 1), node(2, 1, 2)],
    "no root": [node(1, 2, 1), node(2, 1, 1)],
    "self parent": [node(0, None, 0), node(1, 1, 1)],
    "two roots": [node(0, None, 0), node(1, None, 0)],
    "missing parent": [node(0, None, 0), node(1, 7, 1)],
    "depth skips": [node(0, None, 0), node(1, 0, 3)],
    "duplicate id": [node(0, None, 0), node(0, 0, 1)],
}


@pytest.mark.parametrize("shape", sorted(MALFORMED_TREES))
def test_malformed_call_trees_are_refused_and_the_route_stays_readable(
    collector: CollectorProcess, store: Store, key: str, shape: str
) -> None:
    fine = make_record(trace_id="fine", route="/r")
    broken = make_record(trace_id="broken", route="/r", nodes=MALFORMED_TREES[shape])
    answer = send(collector, {"records": [fine, broken]}, key)
    body = assert_envelope(answer)
    assert body["data"]["accepted"] == 1
    assert body["data"]["rejected"][0]["field"] == "function_calls"
    assert stored(store, key) == (["fine"], ["fine"])
    merged = Lab(store).merged_tree(key, "/r")
    assert merged.root.function_name == "wsgi_app" and merged.root.count == 1


def test_nodes_without_parent_ids_get_them_from_their_depth(
    collector: CollectorProcess, store: Store, key: str
) -> None:
    nodes = [{k: v for k, v in n.items() if k != "parent_call_id"} for n in simple_tree(0.2)]
    assert_envelope(send(collector, make_record(trace_id="depths", nodes=nodes), key))
    tree = store.call_trees.find_one({"project_key": key, "trace_id": "depths"})
    assert tree is not None
    assert [n["parent_call_id"] for n in tree["nodes"]] == [None, 0]


def test_metric_counts_that_would_overflow_are_refused(
    collector: CollectorProcess, store: Store, key: str
) -> None:
    point = make_metric([0.1])
    point["count"] = 2**63 - 1
    point["histogram"] = {next(iter(point["histogram"])): 2**63 - 1}
    answer = send(collector, {"metrics": [point, point]}, key, path=METRICS)
    assert (answer.status_code, assert_envelope(answer)["code"]) == (422, 20004)
    assert store.endpoint_metrics.count_documents({"project_key": key}) == 0


def test_the_original_slow_queries_count_is_accepted(
    collector: CollectorProcess, store: Store, key: str
) -> None:
    record = make_record(trace_id="original")
    record["performance_metrics"]["database_metrics"] = {"query_count": 9, "slow_queries": 3}
    assert assert_envelope(send(collector, record, key))["data"]["accepted"] == 1
    doc = store.records.find_one({"project_key": key, "trace_id": "original"})
    assert doc is not None
    database = doc["performance_metrics"]["database_metrics"]
    assert (database["slow_queries"], database["slow_query_count"]) == ([], 3)


@pytest.mark.parametrize(
    "query",
    [
        "records?time_range=1000000000d",
        "records?time_range=99999999999999999999999m",
        "records?time_range=1d&until=0001-01-01T00:00:00Z",
        "records?since=0001-01-01T00:00:00%2B01:00",
        "records?page=100001",
        "records?size=501",
        "records?min_duration=inf",
        "trends/{key}?bucket=1000000000d",
        "trends/{key}?time_range=401d",
        "trends/{key}?time_range=0m",
    ],
)
def test_out_of_range_query_parameters_are_10001(
    collector: CollectorProcess, key: str, query: str
) -> None:
    url = f"{collector.url}/api/v1/performance/{query.format(key=key)}"
    url += ("&" if "?" in url else "?") + f"project_key={key}"
    answer = httpx.get(url, headers=collector.admin_headers, timeout=30)
    assert (answer.status_code, assert_envelope(answer)["code"]) == (400, 10001), answer.text


def test_timestamps_far_in_the_past_are_stored_and_listed(
    collector: CollectorProcess, key: str
) -> None:
    old = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=1)
    assert_envelope(send(collector, make_record(trace_id="old", timestamp=old), key))
    answer = httpx.get(
        f"{collector.url}/api/v1/performance/records",
        params={"project_key": key, "since": "2000-06-01T00:00:00Z"},
        headers=collector.admin_headers,
        timeout=30,
    )
    assert [i["trace_id"] for i in assert_envelope(answer)["data"]["items"]] == ["old"]
