"""The report scheduler: APScheduler cron jobs from a schedule file (SPEC §7).

The file format is in :mod:`pystrument_lab.reports.schedule`.

Several schedulers may run (for availability): each job's state is a
document in ``scheduler_state``, and a run first claims it with one
``find_one_and_update`` that requires the job's ``last_fire`` to be older
than this fire time and its lease (``lock_expires``, float epoch seconds)
to have expired. So exactly one scheduler runs each fire; the lease frees
the job if a scheduler dies mid-run. Every run is a ``job_runs`` document
(``job, task, fire_time, scheduled_for, status running | completed | failed
| skipped, started_at, finished_at, duration, reports, result, error``).

Missed runs: APScheduler keeps its schedule in memory, so after downtime a
scheduler would silently start from "now". Instead, at start-up each job's
latest fire time since its last run (or since it was first registered) is
looked up; if it is at most ``misfire_grace_time`` old it runs once at once
(coalesced: however many fires were missed, one run, for the latest), else it
is recorded as a ``skipped`` run. While running, APScheduler applies the
same policy (``coalesce=True``, ``misfire_grace_time``) to runs delayed by a
busy or suspended process. Relative dates resolve against the scheduled
time, so a late daily summary still covers its own day.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pystrument_lab.reports.schedule import LOOKBACKS, JobSpec, Schedule, cron_trigger, latest_fire
from pystrument_lab.store import Store, utcnow

logger = logging.getLogger("pystrument_lab.reports.scheduler")

__all__ = ["HEARTBEAT_SECONDS", "ReportScheduler"]

HEARTBEAT_SECONDS = 30.0


class ReportScheduler:
    """Runs a :class:`Schedule` with APScheduler; state and history live in the store."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        store: Store | None = None,
        home: Path | None = None,
        blocking: bool = False,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.schedulers.blocking import BlockingScheduler

        if store is None:
            from pystrument_lab.store import connect

            store = connect()
        self.schedule = schedule
        self.store = store
        self.home = home
        self.ident = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.heartbeat_seconds = heartbeat_seconds
        self.triggers = {
            job.name: cron_trigger(job.cron, schedule.timezone) for job in schedule.jobs
        }
        self.blocking = blocking
        kind = BlockingScheduler if blocking else BackgroundScheduler
        self.scheduler = kind(
            timezone=schedule.timezone,
            executors={"default": ThreadPoolExecutor(max(2, len(schedule.jobs)))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": schedule.misfire_grace_time,
            },
        )

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Register the jobs, queue catch-up runs, start; returns at once unless blocking."""
        from apscheduler.events import EVENT_SCHEDULER_STARTED

        now = utcnow()
        for spec in self.schedule.jobs:
            state = self._register(spec, now)
            self.scheduler.add_job(
                self.run_job, self.triggers[spec.name], args=[spec], id=spec.name, name=spec.name
            )
            self._catch_up(spec, state, now)
        # The first heartbeat goes out as soon as the scheduler has started
        # (jobs then have their next run times); later ones every interval.
        self.scheduler.add_listener(lambda _: self.heartbeat(), EVENT_SCHEDULER_STARTED)
        self.scheduler.add_job(
            self.heartbeat, "interval", seconds=self.heartbeat_seconds, id="_heartbeat"
        )
        logger.info(
            "scheduler %s: %d jobs from %s",
            self.ident,
            len(self.schedule.jobs),
            self.schedule.source,
        )
        # BackgroundScheduler subclasses BlockingScheduler: test the mode, not the type.
        if self.blocking:
            try:
                self.scheduler.start()
            finally:
                self._retire()
        else:
            self.scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self._retire()

    def heartbeat(self) -> None:
        """Publish this scheduler and each job's next run time for ``pystrument jobs``."""
        now = time.time()
        self.store.scheduler_heartbeat(
            self.ident,
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "heartbeat": now,
                "schedule_file": self.schedule.source,
                "jobs": [job.name for job in self.schedule.jobs],
            },
            started=now,
        )
        for spec in self.schedule.jobs:
            self.store.set_job_state(spec.name, {"next_run_at": self._next_run_at(spec.name)})

    def _next_run_at(self, name: str) -> float | None:
        job = self.scheduler.get_job(name) if self.scheduler.running else None
        next_run = getattr(job, "next_run_time", None)
        return next_run.timestamp() if next_run else None

    def _retire(self) -> None:
        self.store.retire_scheduler(self.ident)

    def _register(self, spec: JobSpec, now: datetime) -> dict[str, Any]:
        description = {
            "cron": spec.cron,
            "task": spec.task,
            "template": spec.template,
            "projects": spec.projects,
            "timezone": self.schedule.timezone,
        }
        initial = {
            "registered_at": now.timestamp(),
            "last_fire": 0.0,
            "lock_expires": 0.0,
            "lock_owner": None,
            "lock_token": None,
        }
        return self.store.register_job(spec.name, description, initial)

    def _catch_up(self, spec: JobSpec, state: Mapping[str, Any], now: datetime) -> None:
        reference = max(float(state.get("last_fire") or 0.0), float(state["registered_at"]))
        missed = latest_fire(
            self.triggers[spec.name], datetime.fromtimestamp(reference, timezone.utc), now
        )
        if missed is None:
            return
        late = (now - missed).total_seconds()
        if late <= self.schedule.misfire_grace_time:
            logger.info(
                "job %s: running the run missed at %s (%.0f s late)", spec.name, missed, late
            )
            self.scheduler.add_job(
                self.run_job,
                "date",
                args=[spec, missed, True],
                id=f"{spec.name}:catch-up",
                run_date=now,
            )
        else:
            self.run_job(
                spec,
                missed,
                catch_up=True,
                skip=f"missed by {late:.0f} s, beyond "
                f"the grace time of {self.schedule.misfire_grace_time} s",
            )

    # -- one run -------------------------------------------------------------

    def run_job(
        self,
        spec: JobSpec,
        fire_time: datetime | None = None,
        catch_up: bool = False,
        skip: str | None = None,
    ) -> dict[str, Any] | None:
        """Claim this fire of ``spec`` and run it; None when another scheduler has it."""
        if fire_time is None:
            now = datetime.now(timezone.utc)
            fire_time = latest_fire(self.triggers[spec.name], now - LOOKBACKS[-1], now) or now
        token = self._claim(spec, fire_time.timestamp())
        if token is None:
            logger.debug("job %s at %s: run by another scheduler", spec.name, fire_time)
            return None
        run_id = uuid.uuid4().hex
        run = {
            "_id": run_id,
            "job": spec.name,
            "task": spec.task,
            "template": spec.template,
            "fire_time": fire_time.timestamp(),
            "scheduled_for": fire_time,
            "catch_up": catch_up,
            "status": "running",
            "started_at": utcnow(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "scheduler": self.ident,
        }
        if skip is not None:
            run.update(status="skipped", reason=skip, finished_at=utcnow(), duration=0.0)
            self.store.insert_job_run(run)
            self._release(spec, token, "skipped", run_id)
            logger.warning("job %s at %s skipped: %s", spec.name, fire_time, skip)
            return run
        self.store.insert_job_run(run)
        started = time.monotonic()
        outcome: dict[str, Any]
        try:
            outcome = self._execute(spec, fire_time)
        except Exception as exc:
            logger.exception("job %s failed", spec.name)
            outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        outcome["duration"] = round(time.monotonic() - started, 3)
        self.store.finish_job_run(run_id, outcome)
        self._release(spec, token, outcome["status"], run_id)
        return {**run, **outcome}

    def run_all_once(self) -> list[dict[str, Any] | None]:
        """Run every job now, once, through the same claim (``pystrument scheduler --once``)."""
        now = utcnow()
        results = []
        for spec in self.schedule.jobs:
            self._register(spec, now)
            results.append(self.run_job(spec, datetime.now(timezone.utc)))
        return results

    def _execute(self, spec: JobSpec, fire_time: datetime) -> dict[str, Any]:
        if spec.task == "cleanup":
            from pystrument_lab.reports.cleanup import run_cleanup

            days = spec.params.get("retention_days")
            result = run_cleanup(self.store, retention_days=days, home=self.home, now=fire_time)
            return {"status": "completed", "result": result, "error": None}
        from pystrument_lab.reports.runner import run_report

        params = dict(spec.params)
        start, end = params.pop("start", "-1d"), params.pop("end", "now")
        report_type = params.pop("report_type", None)
        reports, errors = [], []
        for project in self._projects(spec):
            document = run_report(
                project,
                str(spec.template),
                start,
                end,
                report_type=report_type,
                params=params,
                store=self.store,
                home=self.home,
                trigger=f"schedule:{spec.name}",
                now=fire_time,
            )
            reports.append(document["id"])
            if document["status"] != "completed":
                errors.append(f"{project}: {(document.get('error') or {}).get('message')}")
        return {
            "status": "failed" if errors else "completed",
            "reports": reports,
            "error": "; ".join(errors) or None,
        }

    def _projects(self, spec: JobSpec) -> list[str]:
        if isinstance(spec.projects, list):
            return [str(project) for project in spec.projects]
        items, _ = self.store.list_projects(page=1, size=100_000, status="active")
        return [item["project_key"] for item in items]

    def _claim(self, spec: JobSpec, fire: float) -> str | None:
        token = uuid.uuid4().hex
        now = time.time()
        lock = {
            "lock_owner": self.ident,
            "lock_token": token,
            "lock_expires": now + self.schedule.lease_seconds,
        }
        return token if self.store.claim_job_fire(spec.name, fire, now, lock) else None

    def _release(self, spec: JobSpec, token: str, status: str, run_id: str) -> None:
        changes: dict[str, Any] = {
            "lock_expires": 0.0,
            "lock_owner": None,
            "lock_token": None,
            "last_status": status,
            "last_run": run_id,
            "last_finished": time.time(),
        }
        if self.scheduler.running:  # a --once run leaves the running schedulers' times alone
            changes["next_run_at"] = self._next_run_at(spec.name)
        self.store.set_job_state(spec.name, changes, lock_token=token)
