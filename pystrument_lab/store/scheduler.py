"""Scheduler state (``scheduler_state``) and run history (``job_runs``).

The scheduling logic is in :mod:`pystrument_lab.reports.scheduler`; these are its
queries. Times compared in filters (``last_fire``, ``lock_expires``,
``heartbeat``) are float epoch seconds, which the embedded server compares
correctly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from pystrument_lab.store.schema import Collections, as_utc, public

FINISHED_RUNS = ["completed", "failed", "skipped"]


class SchedulerQueries(Collections):
    """Queries of schedulers, scheduled jobs and job runs."""

    def scheduler_heartbeat(self, ident: str, fields: Mapping[str, Any], started: float) -> None:
        """Upsert one scheduler's liveness document."""
        self.scheduler_state.update_one(
            {"kind": "scheduler", "name": ident},
            {
                "$set": dict(fields),
                "$setOnInsert": {"kind": "scheduler", "name": ident, "started": started},
            },
            upsert=True,
        )

    def retire_scheduler(self, ident: str) -> None:
        self.scheduler_state.delete_one({"kind": "scheduler", "name": ident})

    def schedulers(self) -> list[dict[str, Any]]:
        return list(self.scheduler_state.find({"kind": "scheduler"}))

    def register_job(
        self, name: str, description: Mapping[str, Any], initial: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create or describe a scheduled job's state; the stored state."""
        query = {"kind": "job", "name": name}
        try:
            self.scheduler_state.update_one(
                query,
                {"$set": dict(description), "$setOnInsert": {**query, **initial}},
                upsert=True,
            )
        except DuplicateKeyError:  # another scheduler registered it at the same moment
            self.scheduler_state.update_one(query, {"$set": dict(description)})
        return dict(self.scheduler_state.find_one(query) or {**query, **initial})

    def set_job_state(
        self, name: str, changes: Mapping[str, Any], *, lock_token: str | None = None
    ) -> None:
        """Set fields of a job's state (only while ``lock_token`` holds it, when given)."""
        query: dict[str, Any] = {"kind": "job", "name": name}
        if lock_token is not None:
            query["lock_token"] = lock_token
        self.scheduler_state.update_one(query, {"$set": dict(changes)})

    def claim_job_fire(self, name: str, fire: float, now: float, lock: Mapping[str, Any]) -> bool:
        """Take one fire of a job: its last fire is older and its lease has expired."""
        claimed = self.scheduler_state.find_one_and_update(
            {"kind": "job", "name": name, "last_fire": {"$lt": fire}, "lock_expires": {"$lt": now}},
            {"$set": {"last_fire": fire, **lock}},
        )
        return claimed is not None

    def scheduled_jobs(self) -> list[dict[str, Any]]:
        return list(self.scheduler_state.find({"kind": "job"}).sort("name", ASCENDING))

    def insert_job_run(self, run: Mapping[str, Any]) -> None:
        self.job_runs.insert_one(dict(run))

    def finish_job_run(self, run_id: str, outcome: Mapping[str, Any]) -> None:
        self.job_runs.update_one(
            {"_id": run_id}, {"$set": dict(outcome), "$currentDate": {"finished_at": True}}
        )

    def running_job_runs(self) -> list[dict[str, Any]]:
        return [public(doc) for doc in self.job_runs.find({"status": "running"})]  # type: ignore[misc]

    def recent_job_runs(self, limit: int) -> list[dict[str, Any]]:
        cursor = (
            self.job_runs.find({"status": {"$in": FINISHED_RUNS}})
            .sort("started_at", DESCENDING)
            .limit(limit)
        )
        return [public(doc) for doc in cursor]  # type: ignore[misc]

    def delete_job_runs_before(self, cutoff: datetime) -> int:
        return self.job_runs.delete_many({"started_at": {"$lt": as_utc(cutoff)}}).deleted_count
