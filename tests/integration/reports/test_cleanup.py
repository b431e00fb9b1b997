"""Retention removes exactly what is older than the cutoff: documents and report files."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId

from pystrument_lab.reports import report_dir
from pystrument_lab.reports.cleanup import run_cleanup
from pystrument_lab.store import (
    ANALYSES,
    CALL_TREES,
    ENDPOINT_METRICS,
    JOB_RUNS,
    METRIC_BATCHES,
    PROJECT_METRICS,
    RECORDS,
    REPORTS,
    Store,
    utcnow,
)

KEY = "pk_retention"


def _report(store: Store, home: Path, created: Any, status: str = "completed") -> str:
    report_id = ObjectId()
    folder = report_dir(home, KEY, str(report_id))
    folder.mkdir(parents=True)
    (folder / "summary.ipynb").write_text("{}")
    (folder / "summary.html").write_text("<html></html>")
    store.reports.insert_one(
        {"_id": report_id, "project_key": KEY, "template": "summary", "status": status,
         "created_at": created, "folder": str(folder),
         "paths": {"notebook": str(folder / "summary.ipynb")}}
    )  # fmt: skip
    return str(report_id)


def _orphan(home: Path, name: str, mtime: float) -> Path:
    folder = home / "reports" / KEY / name
    folder.mkdir(parents=True)
    (folder / "summary.failed.ipynb").write_text("{}")
    for path in (folder / "summary.failed.ipynb", folder):
        os.utime(path, (mtime, mtime))
    return folder


def test_cleanup_deletes_exactly_what_is_older_than_the_retention(
    store: Store, tmp_path: Path
) -> None:
    home = tmp_path.resolve()
    now = utcnow()
    cutoff = now - timedelta(days=30)
    ages = {"old": cutoff - timedelta(seconds=1), "edge": cutoff, "new": now - timedelta(days=29)}
    for label, when in ages.items():
        # as the store writes them: each time also as epoch seconds, which retention compares
        at = when.timestamp()
        store.records.insert_one(
            {"project_key": KEY, "trace_id": label, "timestamp": when, "ts": at}
        )
        store.call_trees.insert_one(
            {"project_key": KEY, "trace_id": label, "timestamp": when, "ts": at}
        )
        store.endpoint_metrics.insert_one(
            {"project_key": KEY, "resolution": "1h", "bucket_start": when, "bucket_epoch": at,
             "route": label, "method": "GET", "status_class": "2xx", "app_version": "1", "count": 1}
        )  # fmt: skip
        store.project_metrics.insert_one(
            {"project_key": KEY, "resolution": "1h", "bucket_start": when, "bucket_epoch": at,
             "route": "", "method": "", "status_class": "", "app_version": label, "count": 1}
        )  # fmt: skip
        store.metric_batches.insert_one(
            {"project_key": KEY, "batch_id": label, "received_at": when, "received_epoch": at}
        )
        store.analyses.insert_one({"project_key": KEY, "trace_id": label, "created_at": when})
        store.db[JOB_RUNS].insert_one({"_id": label, "job": "x", "started_at": when})
    old_report = _report(store, home, ages["old"])
    old_failed = _report(store, home, ages["old"], status="failed")
    still_running = _report(store, home, ages["old"], status="running")
    edge_report = _report(store, home, ages["edge"])
    new_report = _report(store, home, ages["new"])
    old_orphan = _orphan(home, "orphan-old", (cutoff - timedelta(days=1)).timestamp())
    new_orphan = _orphan(home, "orphan-new", (now - timedelta(days=1)).timestamp())
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store.reports.insert_one(
        {"project_key": KEY, "status": "failed", "created_at": ages["old"], "folder": str(outside)}
    )

    outcome = run_cleanup(store, retention_days=30, home=home, now=now)

    assert outcome["cutoff"] == cutoff and outcome["retention_days"] == 30
    assert outcome["removed"] == {
        RECORDS: 1, CALL_TREES: 1, ENDPOINT_METRICS: 1, PROJECT_METRICS: 1, METRIC_BATCHES: 1,
        ANALYSES: 1,
        REPORTS: 3, "report_folders": 3, JOB_RUNS: 1,
    }  # fmt: skip
    for collection in (store.records, store.call_trees, store.analyses):
        assert sorted(doc["trace_id"] for doc in collection.find()) == ["edge", "new"]
    assert sorted(doc["route"] for doc in store.endpoint_metrics.find()) == ["edge", "new"]
    assert sorted(doc["app_version"] for doc in store.project_metrics.find()) == ["edge", "new"]
    assert sorted(doc["batch_id"] for doc in store.metric_batches.find()) == ["edge", "new"]
    assert sorted(doc["_id"] for doc in store.db[JOB_RUNS].find()) == ["edge", "new"]
    left = {str(doc["_id"]) for doc in store.reports.find()}
    assert left == {still_running, edge_report, new_report}
    folders = {path.name for path in (home / "reports" / KEY).iterdir()}
    assert folders == {still_running, edge_report, new_report, new_orphan.name}
    assert old_report not in folders and old_failed not in folders
    assert not old_orphan.exists()
    assert outside.exists()  # a folder outside the archive is never deleted

    again = run_cleanup(store, retention_days=30, home=home, now=now)
    assert set(again["removed"].values()) == {0}
