"""The doctor's analysis, project and index checks on a real store, one finding at a time."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pystrument_lab import doctor
from pystrument_lab.analysis import jobs
from pystrument_lab.analysis.config import AIConfig
from pystrument_lab.analysis.worker import process_one
from pystrument_lab.store import Store
from tests.utils.factories import make_metric
from tests.utils.services import CollectorProcess


def test_a_failed_analysis_is_reported_with_its_reason(store: Store) -> None:
    project = store.create_project("analysed")
    jobs.create_job(store, project["project_key"], trace_id="gone-before-it-ran")
    outcome = process_one(store, "w-1", lease=30, time_limit=60, config=AIConfig())
    assert outcome is not None and outcome["status"] == "failed"

    findings = doctor.check_analysis(store)
    assert [(f.check, f.status) for f in findings] == [
        ("analysis", "ok"),
        ("analysis runs", "problem"),
    ]
    reason = store.analyses.find_one({})["error"]["message"]  # type: ignore[index]
    assert "gone-before-it-ran" in reason
    assert findings[1].message == (
        f"1 of 1 analyses in the last 24 h failed; the latest failure: {reason}"
    )


def test_an_llm_service_without_its_key(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ai.yaml"
    config.write_text(
        "default_service: main\n"
        "services:\n"
        "  main: {provider: anthropic, model: claude-3-5-haiku-latest, api_key_env: NO_SUCH_KEY_VAR}\n"
    )
    monkeypatch.setenv("PYSTRUMENT_AI_CONFIG", str(config))
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    findings = doctor.check_analysis(store)
    assert [(f.check, f.status, f.message, f.fix) for f in findings] == [
        (
            "analysis",
            "problem",
            "the default AI service 'main' (anthropic) has no API key",
            "set NO_SUCH_KEY_VAR for the workers",
        )
    ]
    monkeypatch.setenv("NO_SUCH_KEY_VAR", "sk-present")
    assert doctor.check_analysis(store)[0].status == "ok"


def test_missing_indexes_and_a_project_that_samples_nothing(store: Store) -> None:
    assert store.missing_indexes() == []
    store.metric_batches.drop_indexes()
    assert store.missing_indexes() == [
        "metric_batches(project_key, batch_id)",
        "metric_batches(received_epoch)",
    ]
    assert doctor.check_indexes(store).status == "problem"

    project = store.create_project("quiet", sampling_rate=0.0)
    store.add_metrics(
        project["project_key"],
        [
            {**make_metric([0.1, 0.2]), "interval_start": datetime.now(timezone.utc)},
        ],
    )
    findings = doctor.check_projects(store)
    assert [(f.status, f.message) for f in findings] == [
        ("warning", "project 'quiet' receives metrics but samples 0 % of requests: no call trees")
    ]


def test_redacted_store_url() -> None:
    assert (
        doctor.redact_url("mongodb://app:s3cret@db1:27017,db2:27017/?replicaSet=rs0")
        == "mongodb://app:***@db1:27017,db2:27017/?replicaSet=rs0"
    )
    assert doctor.redact_url("mongodb://db:27017") == "mongodb://db:27017"


def test_an_sdk_reports_what_the_collector_refused(store: Store, tmp_path: Path) -> None:
    from flask import Flask
    from performance_monitor.core import monitor as monitor_module
    from performance_monitor.flask.middleware import PerformanceMiddleware

    collector = CollectorProcess(store.url, store.db.name, tmp_path, MAX_REQUEST_SIZE="1024")
    collector.start()
    try:
        project = collector.create_project("oversized", sampling_rate=1.0)
        app = Flask("storefront")

        @app.get("/basket/<int:basket>")
        def basket(basket: int) -> dict[str, object]:
            return {"basket": basket, "lines": [{"sku": n} for n in range(40)]}

        middleware = PerformanceMiddleware(
            app,
            {
                "project_key": project["project_key"],
                "api_endpoint": collector.url,
                "sampling_rate": 1.0,
                "batch_size": 20,
                "batch_timeout": 0.1,
                "config_poll_interval": 0.1,
                "tags": {"note": "x" * 1500},  # every record is larger than the 1 kB limit
            },
        )
        client = app.test_client()
        for n in range(5):
            client.get(f"/basket/{n}").close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = store.find_project(project["project_key"]) or {}
            if (found.get("sdk_report") or {}).get("failed") == 5:
                break
            time.sleep(0.1)
        assert middleware.monitor is not None
        assert middleware.monitor.sender is not None
        assert middleware.monitor.sender.counters["failed"] == 5
    finally:
        for monitor in monitor_module.all_monitors():
            monitor.close(timeout=0.5)
        collector.stop()

    findings = [f for f in doctor.check_projects(store) if f.check == "sdk"]
    assert len(findings) == 1
    message = findings[0].message
    assert message.startswith(
        "an SDK of project 'oversized' reported trouble sending: 5 failed; last error (at "
    )
    assert message.endswith(
        "): /api/v1/performance/collect: HTTP 413: request body exceeds the 1024 byte limit "
        "(MAX_REQUEST_SIZE); send smaller batches"
    )
    assert store.records.count_documents({"project_key": project["project_key"]}) == 0
