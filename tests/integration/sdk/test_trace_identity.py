"""Several requests of one distributed trace on real servers: one record each, resends stored once.

Requests carrying the same W3C ``traceparent`` (the same caller span, or
different ones of the same trace) share the trace id; the SDK gives each its
own span id, so each is a record of its own with its own call tree, found by
its record key and listed by the trace id. Records without a traceparent are
still one per request, found by their own trace id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from pystrument_lab.analysis import analyze
from pystrument_lab.embedded import free_port
from pystrument_lab.loaders import Lab
from tests.utils.services import CollectorProcess
from tests.utils.sink import Sink

from .launcher_apps import FASTAPI_APP, FLASK_APP
from .test_launcher import _environment, _records, _served

TRACE_ID = "5c1e7a0b9d3f4e21a8b6c0d2e4f61738"
CALLER_A = "a1b2c3d4e5f60718"
CALLER_B = "0918f7e6d5c4b3a2"


def _traceparent(parent: str) -> dict[str, str]:
    return {"traceparent": f"00-{TRACE_ID}-{parent}-01"}


def _tree(store: Any, key: str, record: dict[str, Any]) -> dict[str, Any]:
    tree = store.call_trees.find_one({"_id": f"{key}/{record['record_key']}"})
    assert tree is not None, record["record_key"]
    return tree


def test_requests_of_one_trace_are_records_of_their_own(
    sdk_settings: dict[str, Any],
    tmp_path: Path,
    store: Any,
    project: dict[str, Any],
    collector: CollectorProcess,
) -> None:
    (tmp_path / "shop.py").write_text(FLASK_APP)
    port = free_port()
    command = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "shop:app"]
    with _served(command, tmp_path, _environment(sdk_settings), port, "/orders/0") as (url, _):
        # The same caller twice (a retry), another caller span of the same trace, no traceparent.
        for n, headers in (
            (1, _traceparent(CALLER_A)),
            (2, _traceparent(CALLER_A)),
            (3, _traceparent(CALLER_B)),
            (4, {}),
            (5, {}),
        ):
            assert httpx.get(f"{url}/orders/{n}", headers=headers).json()["id"] == n
    key = project["project_key"]
    by_path = {r["path"]: r for r in _records(store, key)}
    traced = [by_path[f"/orders/{n}"] for n in (1, 2, 3)]
    assert [r["trace_id"] for r in traced] == [TRACE_ID] * 3
    assert [r["parent_span_id"] for r in traced] == [CALLER_A, CALLER_A, CALLER_B]
    spans = [r["span_id"] for r in traced]
    assert len(set(spans)) == 3 and all(len(s) == 16 and int(s, 16) for s in spans)
    assert [r["record_key"] for r in traced] == [f"{TRACE_ID}-{s}" for s in spans]
    trees = [_tree(store, key, r) for r in traced]
    assert len({t["_id"] for t in trees}) == 3
    assert all("tally" in [n["function_name"] for n in t["nodes"]] for t in trees)
    assert [t["record_key"] for t in trees] == [r["record_key"] for r in traced]

    plain = [by_path["/orders/4"], by_path["/orders/5"]]
    assert plain[0]["trace_id"] != plain[1]["trace_id"] != TRACE_ID
    assert all(r.get("parent_span_id") is None for r in plain)
    assert [r["record_key"] for r in plain] == [f"{r['trace_id']}-{r['span_id']}" for r in plain]

    api = f"{collector.url}/api/v1/performance/records"
    admin = collector.admin_headers
    listed = httpx.get(api, params={"project_key": key, "trace_id": TRACE_ID}, headers=admin)
    items = listed.json()["data"]["items"]
    assert sorted(i["path"] for i in items) == ["/orders/1", "/orders/2", "/orders/3"]
    assert listed.json()["data"]["total"] == 3
    for record in traced:
        detail = httpx.get(f"{api}/{key}/{record['record_key']}", headers=admin).json()
        assert detail["code"] == 0
        assert (detail["data"]["path"], detail["data"]["span_id"]) == (
            record["path"],
            record["span_id"],
        )
        assert "tally" in [n["function_name"] for n in detail["data"]["function_calls"]]
    ambiguous = httpx.get(f"{api}/{key}/{TRACE_ID}", headers=admin)
    assert ambiguous.status_code == 409
    assert ambiguous.json()["code"] == 10001
    named = ambiguous.json()["data"]["records"]
    assert sorted(r["record_key"] for r in named) == sorted(r["record_key"] for r in traced)
    # A request without a traceparent is still found by its own trace id, as before.
    alone = httpx.get(f"{api}/{key}/{plain[0]['trace_id']}", headers=admin).json()
    assert alone["data"]["path"] == "/orders/4"

    lab = Lab(store)
    assert lab.record(traced[1]["record_key"]).data["path"] == "/orders/2"
    assert sorted(lab.trace(TRACE_ID)["path"].to_list()) == ["/orders/1", "/orders/2", "/orders/3"]

    # Each request is analysed on its own: the job and the report name its record key.
    queued = httpx.post(
        f"{collector.url}/api/v1/analysis/analyze/{traced[2]['record_key']}",
        params={"project_key": key},
        json={"service": "rules"},
        headers=admin,
    ).json()
    assert queued["code"] == 0, queued
    assert (queued["data"]["trace_id"], queued["data"]["record_key"]) == (
        TRACE_ID,
        traced[2]["record_key"],
    )
    refused = httpx.post(
        f"{collector.url}/api/v1/analysis/analyze/{TRACE_ID}",
        params={"project_key": key},
        json={"service": "rules"},
        headers=admin,
    )
    assert refused.status_code == 409
    report = analyze(traced[0]["record_key"], service="rules", store=store, save=False)
    assert (report["trace_id"], report["record_key"]) == (TRACE_ID, traced[0]["record_key"])
    assert report["status"] == "completed"


def test_a_resent_batch_stores_nothing_new(
    sdk_settings: dict[str, Any],
    tmp_path: Path,
    store: Any,
    project: dict[str, Any],
    collector: CollectorProcess,
    sink: Sink,
) -> None:
    (tmp_path / "api.py").write_text(FASTAPI_APP)
    port = free_port()
    command = ["uvicorn", "api:app", "--host", "127.0.0.1", "--port", str(port)]
    settings = {**sdk_settings, "api_endpoint": sink.url}
    with _served(command, tmp_path, _environment(settings), port, "/items/0") as (url, _):
        for n in (1, 2):
            assert httpx.get(f"{url}/items/{n}", headers=_traceparent(CALLER_A)).json()["id"] == n
    batches = sink.posts("/collect")
    sent = [r for batch in batches for r in batch["records"]]
    assert sorted(r["request_info"]["path"] for r in sent) == ["/items/0", "/items/1", "/items/2"]
    twins = [r for r in sent if r["trace_id"] == TRACE_ID]
    assert len(twins) == 2 and twins[0]["span_id"] != twins[1]["span_id"]

    key = project["project_key"]
    collect = f"{collector.url}/api/v1/performance/collect"
    headers = {"X-Project-Key": key}
    first = [httpx.post(collect, json=batch, headers=headers).json()["data"] for batch in batches]
    again = [httpx.post(collect, json=batch, headers=headers).json()["data"] for batch in batches]
    assert sum(d["accepted"] for d in first) == 3 and sum(d["duplicates"] for d in first) == 0
    assert sum(d["accepted"] for d in again) == 0 and sum(d["duplicates"] for d in again) == 3
    stored = _records(store, key, trace_id=TRACE_ID)
    assert sorted(r["span_id"] for r in stored) == sorted(r["span_id"] for r in twins)
    assert store.call_trees.count_documents({"project_key": key}) == 3
    # One batch naming the same record twice keeps one and says why the other was refused.
    twice = httpx.post(collect, json={"records": [twins[0], twins[0]]}, headers=headers).json()
    assert twice["data"]["accepted"] == 0 and twice["data"]["duplicates"] == 1
    assert twice["data"]["rejected"][0]["field"] == "span_id"
