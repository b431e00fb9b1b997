"""The collector's analysis API: every endpoint and its error codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from pystrument_lab.analysis.config import load_config
from pystrument_lab.analysis.worker import process_one
from pystrument_lab.store import Store
from tests.integration.analysis.fake_llm import write_config
from tests.utils import trees
from tests.utils.services import CollectorProcess

API = "/api/v1/analysis"


def post_records(
    collector: CollectorProcess, project: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    response = httpx.post(
        collector.url + "/api/v1/performance/collect",
        json={"records": records},
        headers={"X-Project-Key": project["project_key"]},
        timeout=30,
    )
    assert response.json()["data"]["accepted"] == len(records)


def record_ids(collector: CollectorProcess, project: dict[str, Any]) -> dict[str, str]:
    response = httpx.get(
        collector.url + "/api/v1/performance/records",
        params={"project_key": project["project_key"], "size": 100},
        headers=collector.admin_headers,
    )
    return {item["trace_id"]: item["id"] for item in response.json()["data"]["items"]}


def call(
    collector: CollectorProcess, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    kwargs.setdefault("headers", collector.admin_headers)
    response = httpx.request(method, collector.url + API + path, timeout=30, **kwargs)
    return response.status_code, response.json()


def test_analyze_then_status_result_and_history(
    collector: CollectorProcess, project: dict[str, Any], store: Store
) -> None:
    record = trees.cpu_record()
    post_records(collector, project, [record])
    record_id = record_ids(collector, project)[record["trace_id"]]

    status, body = call(collector, "POST", f"/analyze/{record_id}")
    assert status == 200 and body["code"] == 0
    task = body["data"]
    assert task["status"] == "pending" and task["trace_id"] == record["trace_id"]

    status, body = call(collector, "POST", f"/analyze/{record_id}")
    assert (status, body["code"]) == (409, 20006)
    assert body["data"]["analysis_id"] == task["analysis_id"]

    _, body = call(collector, "GET", f"/task-status/{task['task_id']}")
    assert (
        body["data"]["status"] == "pending" and body["data"]["analysis_id"] == task["analysis_id"]
    )

    done = process_one(store, "api-worker", lease=30, time_limit=60, config=load_config(None))
    assert done is not None and done["analysis_id"] == task["analysis_id"]

    _, body = call(collector, "GET", f"/task-status/{task['task_id']}")
    assert body["data"]["status"] == "completed" and body["data"]["worker"] == "api-worker"
    _, body = call(collector, "GET", f"/result/{task['analysis_id']}")
    result = body["data"]
    assert result["id"] == task["analysis_id"]
    assert result["status"] == "completed"
    assert result["ai_service"]["provider"] == "rules"
    finding = result["analysis_results"]["bottleneck_analysis"][0]
    assert (finding["type"], finding["function"]) == ("computation", "compute_report_statistics")
    assert "claim" not in result

    _, body = call(collector, "GET", f"/history/{project['project_key']}")
    assert body["data"]["total"] == 1
    assert body["data"]["items"][0]["id"] == task["analysis_id"]
    _, body = call(
        collector, "GET", f"/history/{project['project_key']}", params={"status": "failed"}
    )
    assert body["data"]["total"] == 0

    # once completed, the record may be analysed again (by trace id this time)
    status, body = call(
        collector,
        "POST",
        f"/analyze/{record['trace_id']}",
        params={"project_key": project["project_key"]},
        json={"service": "rules", "priority": 9},
    )
    assert (status, body["code"]) == (200, 0)


def test_analyze_errors(collector: CollectorProcess, project: dict[str, Any]) -> None:
    record = trees.cpu_record()
    post_records(collector, project, [record])
    record_id = record_ids(collector, project)[record["trace_id"]]

    status, body = call(collector, "POST", f"/analyze/{record_id}", headers={})
    assert (status, body["code"]) == (401, 10002)
    status, body = call(
        collector, "POST", f"/analyze/{record_id}", headers={"Authorization": "Bearer wrong"}
    )
    assert (status, body["code"]) == (401, 10002)
    status, body = call(
        collector, "POST", f"/analyze/{record['trace_id']}", params={"project_key": "pk_nope"}
    )
    assert (status, body["code"]) == (404, 20001)
    status, body = call(
        collector, "POST", f"/analyze/{record['trace_id']}"
    )  # a trace id needs the project
    assert (status, body["code"]) == (404, 20004)
    assert "project_key" in body["msg"]
    status, body = call(collector, "POST", f"/analyze/{record_id}", json={"service": "gpt-nowhere"})
    assert (status, body["code"]) == (503, 20005)
    assert "'gpt-nowhere' is not configured" in body["msg"]
    status, body = call(collector, "POST", f"/analyze/{record_id}", json={"priority": 99})
    assert (status, body["code"]) == (400, 10001)
    for path in ("/result/0123456789abcdef01234567", "/result/not-an-id", "/task-status/nope"):
        status, body = call(collector, "GET", path)
        assert (status, body["code"]) == (404, 10001), path
    status, body = call(collector, "GET", "/history/pk_nope")
    assert (status, body["code"]) == (404, 20001)


def test_batch(collector: CollectorProcess, project: dict[str, Any]) -> None:
    records = [trees.cpu_record() for _ in range(3)]
    post_records(collector, project, records)
    ids = record_ids(collector, project)
    call(collector, "POST", f"/analyze/{ids[records[0]['trace_id']]}")  # already pending
    wanted = [ids[r["trace_id"]] for r in records] + ["0123456789abcdef01234567"]
    status, body = call(collector, "POST", "/batch", json={"record_ids": wanted, "priority": 2})
    assert (status, body["code"]) == (200, 0)
    data = body["data"]
    assert [q["record_id"] for q in data["queued"]] == wanted[1:3]
    assert {(s["record_id"], s["code"]) for s in data["skipped"]} == {
        (wanted[0], 20006),
        (wanted[3], 20004),
    }
    _, body = call(collector, "GET", f"/history/{project['project_key']}")
    batch = [item for item in body["data"]["items"] if item["batch_id"] == data["batch_id"]]
    assert len(batch) == 2 and {item["analysis_type"] for item in batch} == {"batch"}
    status, body = call(collector, "POST", "/batch", json={"record_ids": []})
    assert (status, body["code"]) == (400, 10001)
    status, body = call(collector, "POST", "/batch", json={"record_ids": wanted, "service": "nope"})
    assert (status, body["code"]) == (503, 20005)


def test_auto_analysis_queues_slow_records_only(collector: CollectorProcess) -> None:
    project = collector.create_project("auto-project", framework="flask", enable_ai_analysis=True)
    slow, fast = trees.cpu_record(), trees.n_plus_one_record()
    slow["performance_metrics"]["total_duration"] = 1.5  # over the 1.0 s default threshold
    post_records(collector, project, [slow, fast])
    _, body = call(collector, "GET", f"/history/{project['project_key']}")
    [item] = body["data"]["items"]
    assert (item["trace_id"], item["analysis_type"], item["status"]) == (
        slow["trace_id"],
        "auto",
        "pending",
    )


def test_ai_services_config_never_shows_secrets(store: Store, tmp_path: Path) -> None:
    config = write_config(tmp_path / "ai.yaml", "http://127.0.0.1:9/v1")
    text = (
        Path(config)
        .read_text()
        .replace("provider: custom", "provider: custom\n    api_key_env: FAKE_LLM_KEY")
    )
    Path(config).write_text(text)
    collector = CollectorProcess(
        store.url,
        store.db.name,
        tmp_path,
        PYSTRUMENT_AI_CONFIG=config,
        FAKE_LLM_KEY="sk-very-secret",
        FAKE_LLM_TOKEN="bearer-secret",
    )
    collector.start()
    try:
        response = httpx.get(
            collector.url + API + "/config/ai-services", headers=collector.admin_headers
        )
    finally:
        collector.stop()
    assert "very-secret" not in response.text and "bearer-secret" not in response.text
    data = response.json()["data"]
    assert data["default_service"] == "fake"
    services = {s["name"]: s for s in data["services"]}
    assert set(services) == {"rules", "fake"}
    assert services["fake"]["has_api_key"] is True
    assert services["fake"]["headers"] == ["Authorization"]
    assert services["fake"]["endpoint"] == "http://127.0.0.1:9/v1"
    assert "performance_analysis" in data["prompt_templates"]


def test_ai_services_default_is_the_rule_engine(collector: CollectorProcess) -> None:
    response = httpx.get(
        collector.url + API + "/config/ai-services", headers=collector.admin_headers
    )
    data = response.json()["data"]
    assert data["default_service"] == "rules"
    assert [s["name"] for s in data["services"]] == ["rules"]
