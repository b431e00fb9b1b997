from __future__ import annotations

import base64
import gzip
import json
import zlib
from datetime import datetime, timedelta, timezone

import httpx

from pystrument_lab.store import Store
from tests.utils.factories import make_record
from tests.utils.services import CollectorProcess


def _post(collector: CollectorProcess, key: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(
        collector.url + "/api/v1/performance/collect",
        json=body,
        headers={"X-Project-Key": key, **headers},
    )


def test_batch_is_stored_lean_with_its_tree(
    collector: CollectorProcess, project: dict, store: Store
) -> None:
    key = project["project_key"]
    session = zlib.compress(b'{"frame_tree": null}')
    records = [make_record(trace_id=f"t{i}", duration=0.1 * (i + 1)) for i in range(3)]
    records[0]["profile_session"] = base64.b64encode(session).decode()
    records[0]["request_info"]["headers"] = {
        "Authorization": "Bearer secret",
        "Cookie": "a=b",
        "Accept": "x",
    }
    records[0]["request_info"]["query_params"] = {"token": "t0p", "page": "2"}
    answer = _post(collector, key, {"records": records}).json()
    assert answer == {
        "code": 0,
        "msg": "success",
        "data": {"accepted": 3, "duplicates": 0, "rejected": []},
    }

    stored = store.records.find_one({"trace_id": "t0"})
    assert stored is not None
    assert "function_calls" not in stored and "profile_session" not in stored
    assert stored["route"] == "/api/users/{id}" and stored["status_code"] == 200
    assert stored["total_duration"] == 0.1 and stored["app_version"] == "1.0"
    assert stored["request_info"]["headers"] == {
        "Authorization": "[Filtered]",
        "Cookie": "[Filtered]",
        "Accept": "x",
    }
    assert stored["request_info"]["query_params"] == {"token": "[Filtered]", "page": "2"}
    tree = store.call_trees.find_one({"trace_id": "t0"})
    assert [node["function_name"] for node in tree["nodes"]] == ["wsgi_app", "handler"]
    assert bytes(tree["session"]) == session
    assert store.call_trees.count_documents({"project_key": key}) == 3

    project_doc = store.projects.find_one({"project_key": key})
    assert isinstance(project_doc["last_activity"], datetime)


def test_single_record_with_key_in_body(
    collector: CollectorProcess, project: dict, store: Store
) -> None:
    record = make_record(trace_id="solo")
    response = httpx.post(
        collector.url + "/api/v1/performance/collect",
        json={"project_key": project["project_key"], "records": [record]},
    )
    assert response.json()["data"]["accepted"] == 1
    plain = httpx.post(
        collector.url + "/api/v1/performance/collect",
        json=make_record(trace_id="bare"),
        headers={"X-Project-Key": project["project_key"]},
    )
    assert plain.json()["data"]["accepted"] == 1
    assert store.records.count_documents({}) == 2


def test_resent_records_are_not_duplicated(
    collector: CollectorProcess, project: dict, store: Store
) -> None:
    key = project["project_key"]
    batch = {"records": [make_record(trace_id="a"), make_record(trace_id="b")]}
    assert _post(collector, key, batch).json()["data"]["accepted"] == 2
    again = _post(
        collector, key, {"records": [make_record(trace_id="a"), make_record(trace_id="c")]}
    ).json()
    assert again["data"] == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert store.records.count_documents({}) == 3
    assert store.call_trees.count_documents({}) == 3
    in_batch = _post(
        collector, key, {"records": [make_record(trace_id="d"), make_record(trace_id="d")]}
    ).json()
    assert in_batch["data"]["accepted"] == 1
    assert in_batch["data"]["rejected"] == [
        {
            "index": 1,
            "field": "trace_id",
            "error": "the same record (trace_id and span_id) twice in the batch",
        }
    ]


def test_invalid_records_name_the_field(
    collector: CollectorProcess, project: dict, store: Store
) -> None:
    key = project["project_key"]
    bad = make_record()
    bad["performance_metrics"]["total_duration"] = "slow"
    response = _post(collector, key, bad)
    assert (response.status_code, response.json()["code"]) == (422, 20004)
    assert response.json()["msg"].startswith("performance_metrics.total_duration")

    mixed = [make_record(trace_id="ok1"), {"trace_id": "x"}, make_record(trace_id="ok2")]
    mixed[2]["response_info"]["status_code"] = 999
    answer = _post(collector, key, {"records": mixed}).json()["data"]
    assert answer["accepted"] == 1
    assert [(item["index"], item["field"]) for item in answer["rejected"]] == [
        (1, "timestamp"),
        (2, "response_info.status_code"),
    ]
    assert store.records.distinct("trace_id") == ["ok1"]

    future = make_record(timestamp=datetime.now(timezone.utc) + timedelta(days=3))
    assert "future" in _post(collector, key, future).json()["msg"]
    orphan = make_record(
        nodes=[{"call_id": 1, "parent_call_id": 7, "function_name": "f", "duration": 0.1}]
    )
    assert _post(collector, key, orphan).json()["code"] == 20004


def test_project_key_errors(collector: CollectorProcess, project: dict) -> None:
    missing = httpx.post(collector.url + "/api/v1/performance/collect", json=make_record())
    assert (missing.status_code, missing.json()["code"]) == (401, 10002)
    unknown = _post(collector, "pk_unknown", make_record())
    assert (unknown.status_code, unknown.json()["code"]) == (401, 20003)
    with collector.client(headers=collector.admin_headers) as api:
        api.put(f"/api/v1/projects/{project['project_key']}", json={"status": "archived"})
    archived = _post(collector, project["project_key"], make_record())
    assert (archived.status_code, archived.json()["code"]) == (403, 20003)
    assert "archived" in archived.json()["msg"]


def test_gzip_bodies(collector: CollectorProcess, project: dict, store: Store) -> None:
    body = gzip.compress(json.dumps({"records": [make_record(trace_id="gz")]}).encode())
    headers = {
        "X-Project-Key": project["project_key"],
        "Content-Encoding": "gzip",
        "Content-Type": "application/json",
    }
    response = httpx.post(
        collector.url + "/api/v1/performance/collect", content=body, headers=headers
    )
    assert response.json()["data"]["accepted"] == 1
    assert store.records.count_documents({"trace_id": "gz"}) == 1
    truncated = httpx.post(
        collector.url + "/api/v1/performance/collect",
        content=body[: len(body) // 2],
        headers=headers,
    )
    assert (truncated.status_code, truncated.json()["code"]) == (400, 10001)
    assert "truncated" in truncated.json()["msg"]


def test_malformed_bodies(collector: CollectorProcess, project: dict) -> None:
    headers = {"X-Project-Key": project["project_key"]}
    url = collector.url + "/api/v1/performance/collect"
    not_json = httpx.post(
        url, content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["code"]) == (400, 10001)
    form = httpx.post(
        url,
        content=b"a=b",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (form.status_code, form.json()["code"]) == (415, 10001)
    deep: object = []
    for _ in range(200):
        deep = [deep]
    nested = httpx.post(url, json={"records": deep}, headers=headers)
    assert nested.json()["code"] == 10001 and "deeper" in nested.json()["msg"]
    empty = httpx.post(url, json={"records": []}, headers=headers)
    assert empty.json()["code"] == 20004


def test_oversize_body_is_refused(store: Store, tmp_path) -> None:
    collector = CollectorProcess(store.url, store.db.name, tmp_path, MAX_REQUEST_SIZE="65536")
    collector.start()
    try:
        project = collector.create_project("big")
        big = make_record()
        big["request_info"]["user_agent"] = "x" * 4000
        body = {"records": [dict(big, trace_id=f"t{i}") for i in range(30)]}
        response = httpx.post(
            collector.url + "/api/v1/performance/collect",
            json=body,
            headers={"X-Project-Key": project["project_key"]},
        )
        assert (response.status_code, response.json()["code"]) == (413, 10001)
        # A gzip body that inflates past the limit is refused as well.
        bomb = gzip.compress(json.dumps(body).encode())
        assert len(bomb) < 65536
        inflated = httpx.post(
            collector.url + "/api/v1/performance/collect",
            content=bomb,
            headers={
                "X-Project-Key": project["project_key"],
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
        )
        assert (inflated.status_code, inflated.json()["code"]) == (413, 10001)
        assert store.records.count_documents({}) == 0
    finally:
        collector.stop()


def test_rate_limit_per_project_key(store: Store, tmp_path) -> None:
    collector = CollectorProcess(
        store.url, store.db.name, tmp_path, PYSTRUMENT_RATE_LIMIT_PER_MINUTE="5"
    )
    collector.start()
    try:
        first = collector.create_project("limited")["project_key"]
        second = collector.create_project("other")["project_key"]
        codes = [_post(collector, first, make_record()).json()["code"] for _ in range(7)]
        assert codes[:5] == [0] * 5 and codes[5:] == [10004, 10004]
        limited = _post(collector, first, make_record())
        assert limited.status_code == 429 and limited.json()["data"]["retry_after"] > 0
        assert _post(collector, second, make_record()).json()["code"] == 0
    finally:
        collector.stop()


def test_remote_config_follows_the_project(collector: CollectorProcess, project: dict) -> None:
    key = project["project_key"]
    config = httpx.get(collector.url + "/api/v1/sdk/config", headers={"X-Project-Key": key}).json()
    assert config["data"] == {"enabled": True, "sampling_rate": 1.0}
    with collector.client(headers=collector.admin_headers) as api:
        api.put(f"/api/v1/projects/{key}", json={"sampling_rate": 5})
        api.put(f"/api/v1/projects/{key}", json={"config": {"enabled": False}})
    config = httpx.get(collector.url + "/api/v1/sdk/config", headers={"X-Project-Key": key}).json()
    assert config["data"] == {"enabled": False, "sampling_rate": 0.05}
    unknown = httpx.get(collector.url + "/api/v1/sdk/config", headers={"X-Project-Key": "pk_nope"})
    assert unknown.json()["code"] == 20003
