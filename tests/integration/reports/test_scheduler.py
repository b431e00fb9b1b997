"""The scheduler fires cron jobs, one scheduler per fire, and catches up missed runs on purpose."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pystrument_lab.reports.overview import job_overview
from pystrument_lab.reports.schedule import JobSpec, Schedule
from pystrument_lab.reports.scheduler import ReportScheduler
from pystrument_lab.store import JOB_RUNS, SCHEDULER_STATE, Store


def _wait_for(check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"nothing after {timeout} s")


@pytest.mark.slow
def test_a_cron_job_runs_the_report(store: Store, shop: dict[str, Any], tmp_path: Path) -> None:
    fire = (datetime.now(timezone.utc) + timedelta(seconds=3)).replace(microsecond=0)
    spec = JobSpec(
        "summary-now",
        f"{fire.second} {fire.minute} * * * *",  # seconds first: fires once, 3 s from now
        template="summary",
        projects=[shop["name"]],
        params={"start": "-1d", "end": "now"},
    )
    scheduler = ReportScheduler(Schedule([spec]), store=store, home=tmp_path)
    scheduler.start()
    try:
        report = _wait_for(
            lambda: store.reports.find_one(
                {"trigger": "schedule:summary-now", "status": {"$ne": "running"}}
            ),
            timeout=120,
        )
        overview = _wait_for(
            lambda: (o := job_overview(store)) and o["recent_runs"] and o["schedulers"] and o,
            timeout=60,
        )
    finally:
        scheduler.shutdown()

    assert report["status"] == "completed", report.get("error")
    assert report["project_key"] == shop["project_key"] and report["template"] == "summary"
    assert Path(report["paths"]["html"]).exists()
    # Relative dates resolve against the scheduled time.
    assert report["end_date"] == fire and report["start_date"] == fire - timedelta(days=1)
    (run,) = store.db[JOB_RUNS].find({"job": "summary-now"})
    assert run["status"] == "completed" and run["reports"] == [str(report["_id"])]
    assert run["scheduled_for"] == fire and run["catch_up"] is False
    assert run["finished_at"] >= run["started_at"]
    (job,) = overview["jobs"]
    assert job["name"] == "summary-now" and job["last_status"] == "completed"
    assert job["last_fire"] == fire and not job["running"]
    assert job["next_run"] is not None and job["next_run"] > fire
    assert [s["alive"] for s in overview["schedulers"]] == [True]
    assert overview["recent_runs"][0]["id"] == run["_id"]
    assert overview["recent_reports"][0]["id"] == str(report["_id"])
    # A stopped scheduler leaves no live entry behind.
    assert store.db[SCHEDULER_STATE].count_documents({"kind": "scheduler"}) == 0


def test_two_schedulers_run_each_fire_once(store: Store, tmp_path: Path) -> None:
    spec = JobSpec("cleanup-every-second", "* * * * * *", task="cleanup")
    schedulers = [ReportScheduler(Schedule([spec]), store=store, home=tmp_path) for _ in range(2)]
    for scheduler in schedulers:
        scheduler.start()
    time.sleep(4.5)
    for scheduler in schedulers:
        scheduler.shutdown()

    runs = list(store.db[JOB_RUNS].find({"job": "cleanup-every-second"}))
    fires = [run["fire_time"] for run in runs]
    assert len(fires) >= 3
    assert len(set(fires)) == len(fires)  # no fire ran twice
    assert all(run["status"] == "completed" for run in runs)
    assert all(run["result"]["retention_days"] == 30 for run in runs)
    assert all(fire == int(fire) for fire in fires)  # whole seconds: the cron's own times


def test_missed_runs_after_downtime(store: Store, tmp_path: Path) -> None:
    """Within the grace time: one catch-up run for the latest missed fire; beyond: skipped."""
    now = time.time()
    state = store.db[SCHEDULER_STATE]
    hourly = JobSpec("hourly-cleanup", "0 * * * *", task="cleanup")
    yearly = JobSpec("new-year-cleanup", "0 0 1 1 *", task="cleanup")
    for spec, down_since in ((hourly, now - 3 * 3600), (yearly, now - 400 * 86400)):
        state.insert_one(
            {"kind": "job", "name": spec.name, "registered_at": down_since,
             "last_fire": down_since, "lock_expires": 0.0, "lock_owner": None}
        )  # fmt: skip
    schedule = Schedule([hourly, yearly], misfire_grace_time=2 * 3600)
    scheduler = ReportScheduler(schedule, store=store, home=tmp_path)
    scheduler.start()
    try:
        _wait_for(
            lambda: store.db[JOB_RUNS].find_one({"job": "hourly-cleanup", "status": "completed"}),
            timeout=30,
        )
    finally:
        scheduler.shutdown()
    # A second scheduler starting later finds nothing left to catch up.
    again = ReportScheduler(schedule, store=store, home=tmp_path)
    again.start()
    time.sleep(1.0)
    again.shutdown()

    last_hour = datetime.fromtimestamp(now - now % 3600, timezone.utc)
    (caught_up,) = store.db[JOB_RUNS].find({"job": "hourly-cleanup"})
    assert caught_up["catch_up"] is True and caught_up["scheduled_for"] == last_hour
    (skipped,) = store.db[JOB_RUNS].find({"job": "new-year-cleanup"})
    assert skipped["status"] == "skipped" and "beyond the grace time" in skipped["reason"]
    year = datetime.now(timezone.utc).year
    assert skipped["scheduled_for"] == datetime(year, 1, 1, tzinfo=timezone.utc)


def test_scheduler_once_and_jobs_cli(store: Store, tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(
        "jobs:\n  - name: nightly-cleanup\n    cron: '0 2 * * *'\n    task: cleanup\n"
        "    params: {retention_days: 7}\n"
    )
    env = {
        **os.environ,
        "PYSTRUMENT_MONGODB_URL": store.url,
        "PYSTRUMENT_DATABASE": store.db.name,
        "PYSTRUMENT_HOME": str(tmp_path),
    }
    cli = [sys.executable, "-m", "pystrument_lab.cli"]
    once = subprocess.run(
        [*cli, "scheduler", "--schedule", str(schedule), "--once"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert "nightly-cleanup: completed" in once.stdout
    listed = subprocess.run(
        [*cli, "jobs", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    overview = json.loads(listed.stdout)
    (job,) = overview["jobs"]
    assert job["name"] == "nightly-cleanup" and job["last_status"] == "completed"
    (run,) = overview["recent_runs"]
    assert run["task"] == "cleanup" and run["result"]["retention_days"] == 7
    text = subprocess.run(
        [*cli, "jobs"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert "nightly-cleanup" in text and "removed nothing" in text
    assert overview["analysis"]["queues"]["batch"] == {
        "pending": 0,
        "running": 0,
        "completed": 0,
        "failed": 0,
    }
    assert "  batch      pending 0     running 0     completed 0      failed 0" in text
    assert "workers busy: none" in text


def test_scheduler_service_starts_shows_up_in_jobs_and_stops_on_sigterm(
    store: Store, tmp_path: Path
) -> None:
    """What ``pystrument up`` runs: the default schedule, until SIGTERM."""
    env = {
        **os.environ,
        "PYSTRUMENT_MONGODB_URL": store.url,
        "PYSTRUMENT_DATABASE": store.db.name,
        "PYSTRUMENT_HOME": str(tmp_path),
    }
    cli = [sys.executable, "-m", "pystrument_lab.cli"]
    process = subprocess.Popen(
        [*cli, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        overview = _wait_for(
            lambda: (o := job_overview(store))["schedulers"] and len(o["jobs"]) == 3 and o,
            timeout=30,
        )
        names = {job["name"]: job for job in overview["jobs"]}
        assert set(names) == {"daily-summary", "weekly-regression", "cleanup"}
        assert names["cleanup"]["next_run"].hour == 2 and names["cleanup"]["next_run"].minute == 0
        assert names["weekly-regression"]["next_run"].weekday() == 0  # Monday
        assert overview["schedulers"][0]["alive"]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "3 jobs from" in output and "Traceback" not in output
    assert store.db[SCHEDULER_STATE].count_documents({"kind": "scheduler"}) == 0
