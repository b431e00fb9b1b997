"""Hostile and broken SDK traffic: each request gets a clear code or is stored exactly.

After every test the collector process is still running and ``/health``
answers 0: no request crashes it or leaves it unable to serve.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from pystrument_lab.store import RESOLUTIONS, Store
from tests.utils.audit import assert_envelope, new_project, running_collector
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess

COLLECT = "/api/v1/performance/collect"
METRICS = "/api/v1/performance/metrics"
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def collector_survives(shared_collector: CollectorProcess) -> Iterator[None]:
    yield
    assert shared_collector.process is not None and shared_collector.process.poll() is None
    health = httpx.get(shared_collector.url + "/health", timeout=10)
    assert (health.status_code, health.json()["code"]) == (200, 0)


@pytest.fixture
def key(shared_collector: CollectorProcess) -> str:
    return str(new_project(shared_collector, "malformed")["project_key"])


def post(
    collector: CollectorProcess,
    key: str,
    payload: Any,
    *,
    path: str = COLLECT,
    compress: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"X-Project-Key": key, "Content-Type": "application/json", **(headers or {})}
    if compress:
        raw = gzip.compress(raw, compresslevel=1)
        sent["Content-Encoding"] = "gzip"
    return httpx.post(collector.url + path, content=raw, headers=sent, timeout=60)


def stored_ids(store: Store, key: str) -> list[str]:
    return sorted(doc["trace_id"] for doc in store.records.find({"project_key": key}))


def raw_http(url: str, request: bytes) -> bytes:
    """Send bytes no HTTP client would produce; return the status line and head of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            try:
                data = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


# -- content types and encodings --------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/xml", 415),
        ("application/octet-stream", 415),
        ("application/json; charset=utf-8", 200),
        ("application/vnd.pystrument+json", 200),
        ("APPLICATION/JSON", 200),
    ],
)
def test_content_types(
    content_type: str,
    status: int,
    shared_collector: CollectorProcess,
    shared_store: Store,
    key: str,
) -> None:
    record = make_record()
    response = post(shared_collector, key, record, headers={"Content-Type": content_type})
    body = assert_envelope(response)
    assert response.status_code == status, body
    if status == 415:
        assert body["code"] == 10001 and "Content-Type" in body["msg"]
        assert stored_ids(shared_store, key) == []
    else:
        assert body["data"]["accepted"] == 1
        assert stored_ids(shared_store, key) == [record["trace_id"]]


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br", "x-unknown"])
def test_unsupported_content_encoding(
    encoding: str, shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    response = post(shared_collector, key, make_record(), headers={"Content-Encoding": encoding})
    body = assert_envelope(response)
    assert (response.status_code, body["code"]) == (400, 10001)
    assert "Content-Encoding" in body["msg"]
    assert stored_ids(shared_store, key) == []


def test_gzip_header_on_plain_body_and_binary_garbage(
    shared_collector: CollectorProcess, key: str
) -> None:
    plain = post(shared_collector, key, make_record(), headers={"Content-Encoding": "gzip"})
    assert (plain.status_code, assert_envelope(plain)["code"]) == (400, 10001)
    garbage = post(shared_collector, key, bytes(range(256)) * 64)
    assert (garbage.status_code, assert_envelope(garbage)["code"]) == (400, 10001)
    latin1 = post(shared_collector, key, '{"trace_id": "é"}'.encode("latin-1"))
    assert (latin1.status_code, assert_envelope(latin1)["code"]) == (400, 10001)


def test_bodies_that_are_not_batches(shared_collector: CollectorProcess, key: str) -> None:
    for payload, code in [
        ([], 20004),
        (42, 20004),
        ("records", 20004),
        (None, 20004),
        ({"records": {}}, 20004),
        ([make_record() for _ in range(101)], 20004),  # MAX_BATCH_SIZE holds for bare lists too
        ({"records": [make_record() for _ in range(101)]}, 20004),
    ]:
        response = post(shared_collector, key, payload)
        body = assert_envelope(response)
        assert body["code"] == code, (
            payload if not isinstance(payload, list) else len(payload),
            body,
        )
        assert response.status_code == 422


# -- unicode and NUL -------------------------------------------------------------------


def test_unicode_and_nul_inside_records_are_stored_cleanly(
    shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    record = make_record(path="/api/ünïcødé/☃/\x00x", route="/api/ünïcødé/{name}\x00")
    record["request_info"]["headers"] = {
        "x-ünï\x00code": "välue\x00",
        "$where": "1",
        "a.b": "dotted",
        "Authorization": "Bearer secret-token",
    }
    record["request_info"]["query_params"] = {"q": "日本語", "api_key": "k-123"}
    record["tags"] = {"emoji": "🚀", "nul\x00key": "v"}
    response = post(shared_collector, key, record)
    assert assert_envelope(response)["data"] == {"accepted": 1, "duplicates": 0, "rejected": []}
    stored = shared_store.records.find_one({"project_key": key})
    assert stored is not None
    assert stored["path"] == stored["request_info"]["path"] == "/api/ünïcødé/☃/x"
    assert stored["route"] == "/api/ünïcødé/{name}"
    headers = stored["request_info"]["headers"]
    assert headers["x-ünïcode"] == "välue\x00"  # NUL leaves keys only; values are opaque text
    assert headers["\uff04where"] == "1" and headers["a\uff0eb"] == "dotted"
    assert headers["Authorization"] == "[Filtered]"
    assert stored["request_info"]["query_params"] == {"q": "日本語", "api_key": "[Filtered]"}
    assert stored["tags"] == {"emoji": "🚀", "nulkey": "v"}


@pytest.mark.parametrize(
    "trace_id", ["ünïcode", "nul\x00id", "a b", "x" * 129, "", "../../etc", "$gt", "id\n"]
)
def test_bad_trace_ids_are_rejected_by_index(
    trace_id: str, shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    good = make_record()
    response = post(
        shared_collector,
        key,
        {
            "records": [
                good,
                dict(make_record(), trace_id=trace_id),
            ]
        },
    )
    data = assert_envelope(response)["data"]
    assert data["accepted"] == 1
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [(1, "trace_id")]
    assert stored_ids(shared_store, key) == [good["trace_id"]]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/%E2%98%83",
        "/api/v1/projects/%00",
        "/api/v1/projects/pk%00injected",
        "/api/v1/performance/records/%F0%9F%9A%80/%00",
        "/api/v1/performance/trends/%C3%A9?time_range=%00",
        "/api/v1/%FF%FE",
        "/health%00",
    ],
)
def test_unicode_and_nul_in_url_paths(path: str, shared_collector: CollectorProcess) -> None:
    response = httpx.get(shared_collector.url + path, headers=shared_collector.admin_headers)
    body = assert_envelope(response)
    assert body["code"] in (10001, 20001, 20004), body
    assert 400 <= response.status_code < 500


def test_unicode_and_nul_in_http_headers(shared_collector: CollectorProcess) -> None:
    record = json.dumps(make_record()).encode()
    # A non-ASCII project key is an unknown key, not a crash.
    latin = httpx.post(
        shared_collector.url + COLLECT,
        content=record,
        headers={"X-Project-Key": "pk_ünï".encode("latin-1"), "Content-Type": "application/json"},  # type: ignore[dict-item]
    )
    assert (latin.status_code, assert_envelope(latin)["code"]) == (401, 20003)
    utf8 = httpx.get(
        shared_collector.url + "/api/v1/projects",
        headers={"Authorization": "Bearer ☃".encode()},  # type: ignore[dict-item]
    )
    assert (utf8.status_code, assert_envelope(utf8)["code"]) == (401, 10002)
    # NUL and raw control bytes in a header: the HTTP layer refuses the request outright.
    for header in (b"X-Project-Key: pk\x00x", b"X-Admin-Token: a\x00b", b"X\x00Y: 1"):
        answer = raw_http(
            shared_collector.url,
            b"POST "
            + COLLECT.encode()
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + header
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(record)).encode()
            + b"\r\n\r\n"
            + record,
        )
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


# -- duplicates, clocks, partly invalid batches ------------------------------------------------


def test_duplicate_trace_ids_in_one_batch(
    shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    first = make_record(trace_id="dup-1", duration=0.25)
    batch = [
        first,
        make_record(trace_id="dup-1", duration=9.0),
        make_record(trace_id="uniq"),
        make_record(trace_id="dup-1"),
    ]
    data = assert_envelope(post(shared_collector, key, {"records": batch}))["data"]
    assert data["accepted"] == 2 and data["duplicates"] == 0
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [
        (1, "trace_id"),
        (3, "trace_id"),
    ]
    assert stored_ids(shared_store, key) == ["dup-1", "uniq"]
    stored = shared_store.records.find_one({"project_key": key, "trace_id": "dup-1"})
    assert stored is not None and stored["total_duration"] == 0.25  # the first one wins
    again = assert_envelope(post(shared_collector, key, {"records": [first]}))["data"]
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert shared_store.call_trees.count_documents({"project_key": key}) == 2


def test_clocks_far_in_the_future_and_past(
    shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    now = datetime.now(timezone.utc)
    cases: list[tuple[Any, bool]] = [
        ((now + timedelta(hours=23)).isoformat(), True),
        ((now + timedelta(days=2)).isoformat(), False),
        ("9999-12-31T23:59:59Z", False),
        ("1970-01-01T00:00:00Z", True),
        ("1901-12-13T20:45:52+00:00", True),
        (0, True),
        (1e20, False),
        (-1e12, True),  # beyond ±2e10 pydantic reads epoch numbers as milliseconds: 1938
        ("2026-13-45T99:00:00Z", False),
        ("yesterday", False),
        ("2026-02-01T10:00:00+14:00", True),
    ]
    records = [make_record(trace_id=f"clock-{i}") for i in range(len(cases))]
    for record, (stamp, _) in zip(records, cases, strict=True):
        record["timestamp"] = stamp
    data = assert_envelope(post(shared_collector, key, {"records": records}))["data"]
    expected_rejected = [i for i, (_, ok) in enumerate(cases) if not ok]
    assert [r["index"] for r in data["rejected"]] == expected_rejected
    assert all(r["field"] == "timestamp" for r in data["rejected"])
    assert data["accepted"] == len(cases) - len(expected_rejected)
    stored = {
        d["trace_id"]: d["timestamp"] for d in shared_store.records.find({"project_key": key})
    }
    assert stored["clock-3"] == stored["clock-5"] == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert stored["clock-4"] == datetime(1901, 12, 13, 20, 45, 52, tzinfo=timezone.utc)
    assert stored["clock-7"] == datetime(1938, 4, 24, 22, 13, 20, tzinfo=timezone.utc)
    assert stored["clock-10"] == datetime(2026, 1, 31, 20, 0, tzinfo=timezone.utc)  # kept in UTC

    future = make_metric([0.1], start=now + timedelta(days=3))
    refused = post(shared_collector, key, {"batch_id": "far", "metrics": [future]}, path=METRICS)
    assert (refused.status_code, assert_envelope(refused)["code"]) == (422, 20004)
    old = make_metric([0.1, 0.2], start=datetime(1990, 1, 1, tzinfo=timezone.utc))
    kept = post(shared_collector, key, {"batch_id": "old", "metrics": [old]}, path=METRICS)
    assert assert_envelope(kept)["data"] == {"accepted": 1, "duplicate_batch": False}
    # one document per resolution, the 1990 interval included
    assert shared_store.endpoint_metrics.count_documents({"project_key": key}) == len(RESOLUTIONS)


def test_partly_invalid_batch_keeps_every_valid_record(
    shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    breakers = {
        3: lambda r: r.pop("trace_id"),
        7: lambda r: r["performance_metrics"].update(total_duration=-1),
        11: lambda r: r["request_info"].update(method=""),
        19: lambda r: r.update(
            function_calls=[
                {"call_id": 0, "parent_call_id": 0, "function_name": "f", "duration": 1},
                {"call_id": 0, "function_name": "g", "duration": 1},
            ]
        ),
        23: lambda r: r["response_info"].update(status_code="teapot"),
        42: lambda r: r.update(request_info="GET /"),
        99: lambda r: r.update(timestamp=None),
    }
    records = [make_record(trace_id=f"mix-{i:03d}") for i in range(100)]
    for index, breaker in breakers.items():
        breaker(records[index])
    data = assert_envelope(post(shared_collector, key, {"records": records}, compress=True))["data"]
    assert [r["index"] for r in data["rejected"]] == sorted(breakers)
    assert all(r["error"] for r in data["rejected"])
    assert data["accepted"] == 100 - len(breakers)
    expected = sorted(f"mix-{i:03d}" for i in range(100) if i not in breakers)
    assert stored_ids(shared_store, key) == expected
    assert shared_store.call_trees.count_documents({"project_key": key}) == len(expected)


# -- big payloads ------------------------------------------------------------------------------


def _chain(count: int) -> list[dict[str, Any]]:
    depths = [0]
    for i in range(1, count):
        depths.append(depths[(i - 1) // 4] + 1)
    return [
        {
            "call_id": i,
            "parent_call_id": None if i == 0 else (i - 1) // 4,
            "function_name": f"f{i}",
            "file_path": "app.py",
            "line_number": i,
            "duration": 1.0,
            "self_time": 0.0,
            "depth": depths[i],
            "call_order": 0,
        }
        for i in range(count)
    ]


def test_huge_node_lists(shared_collector: CollectorProcess, shared_store: Store, key: str) -> None:
    at_limit = make_record(trace_id="nodes-max", nodes=_chain(20_000))
    over = make_record(trace_id="nodes-over", nodes=_chain(20_001))
    data = assert_envelope(
        post(shared_collector, key, {"records": [at_limit, over]}, compress=True)
    )["data"]
    assert data["accepted"] == 1
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [(1, "function_calls")]
    tree = shared_store.call_trees.find_one({"project_key": key, "trace_id": "nodes-max"})
    assert tree is not None and len(tree["nodes"]) == 20_000
    assert [n["call_id"] for n in tree["nodes"][:3]] == [0, 1, 2]
    record = shared_store.records.find_one({"project_key": key, "trace_id": "nodes-max"})
    assert record is not None and record["node_count"] == 20_000 and "function_calls" not in record


def test_bodies_over_10_mb_are_refused(
    shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    filler = make_record()
    filler["request_info"]["body"] = "x" * 60_000
    payload = json.dumps(
        {"records": [dict(filler, trace_id=f"big-{i}") for i in range(100)]}
    ).encode()
    payload += b" " * (11 * MB - len(payload))  # JSON whitespace: a valid 11 MB document
    declared = post(shared_collector, key, payload)
    assert (declared.status_code, assert_envelope(declared)["code"]) == (413, 10001)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for start in range(0, len(payload), MB):
            yield payload[start : start + MB]

    try:
        streamed = httpx.post(
            shared_collector.url + COLLECT,
            content=chunks(),
            headers={"X-Project-Key": key, "Content-Type": "application/json"},
            timeout=60,
        )
    except httpx.WriteError:
        streamed = None  # refused before the client finished writing: acceptable
    if streamed is not None:
        assert (streamed.status_code, assert_envelope(streamed)["code"]) == (413, 10001)
    assert stored_ids(shared_store, key) == []


def test_a_large_valid_batch_is_stored_when_the_limit_allows(
    mongo_url: str, tmp_path: Path
) -> None:
    with running_collector(mongo_url, tmp_path, MAX_REQUEST_SIZE=str(32 * MB)) as collector:
        key = new_project(collector)["project_key"]
        records = []
        for i in range(60):
            record = make_record(trace_id=f"large-{i}", nodes=_chain(1000))
            record["request_info"]["body"] = "y" * 60_000
            records.append(record)
        raw = json.dumps({"records": records}).encode()
        assert len(raw) > 10 * MB
        response = post(collector, key, raw)
        assert assert_envelope(response)["data"] == {
            "accepted": 60,
            "duplicates": 0,
            "rejected": [],
        }
        store = Store(mongo_url, database=collector.env["PYSTRUMENT_DATABASE"])
        try:
            assert store.records.count_documents({"project_key": key}) == 60
            assert store.call_trees.count_documents({"project_key": key}) == 60
            stored = store.records.find_one({"trace_id": "large-59"})
            assert stored is not None and len(stored["request_info"]["body"]) == 60_000
        finally:
            store.close()
        assert httpx.get(collector.url + "/health").json()["code"] == 0


def test_integers_beyond_what_the_store_can_hold(
    shared_collector: CollectorProcess, shared_store: Store, key: str
) -> None:
    """The store keeps 8-byte integers: larger ones are refused by field, never a 500."""
    huge = 2**63
    breakers = {
        1: lambda r: r["function_calls"][1].update(call_id=huge),
        2: lambda r: r["function_calls"][0].update(line_number=2**70),
        3: lambda r: r["response_info"].update(response_size=10**30),
        4: lambda r: r["performance_metrics"].update(database_metrics={"query_count": huge}),
        5: lambda r: r["performance_metrics"].update(cache_metrics={"cache_hits": huge}),
    }
    records = [make_record(trace_id=f"int-{i}") for i in range(6)]
    for index, breaker in breakers.items():
        breaker(records[index])
    records[0]["function_calls"][1]["line_number"] = 2**63 - 1  # the largest that fits is kept
    data = assert_envelope(post(shared_collector, key, {"records": records}))["data"]
    assert [r["index"] for r in data["rejected"]] == sorted(breakers)
    assert stored_ids(shared_store, key) == ["int-0"]

    metric = make_metric([0.1])
    metric.update(count=huge, histogram={"100": huge})
    refused = post(shared_collector, key, {"batch_id": "huge", "metrics": [metric]}, path=METRICS)
    assert (refused.status_code, assert_envelope(refused)["code"]) == (422, 20004)

    admin = shared_collector.admin_headers
    for path, params in [
        ("/api/v1/projects", {"page": 10**20}),
        ("/api/v1/performance/records", {"project_key": key, "page": 2**62}),
        (f"/api/v1/analysis/history/{key}", {"page": 10**19}),
    ]:
        response = httpx.get(shared_collector.url + path, params=params, headers=admin)
        assert (response.status_code, assert_envelope(response)["code"]) == (400, 10001), path
