"""What background work is scheduled, running and recently finished.

The counterpart of the original's Celery inspect and Flower, read only from
the store (``scheduler_state``, ``job_runs``, ``reports``,
``ai_analysis_results``), so it sees every scheduler and worker on every
machine. ``pystrument jobs`` prints it; the dashboard's reports page shows it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from pymongo import DESCENDING

from pystrument_lab.store import JOB_RUNS, SCHEDULER_STATE, Store, public

__all__ = ["job_overview"]


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch else None


def job_overview(store: Store, *, recent: int = 10) -> dict[str, Any]:
    """Schedulers alive, scheduled jobs, running work, recent runs and reports, analysis queues."""
    from pystrument_lab.analysis.jobs import queue_stats
    from pystrument_lab.scheduler import HEARTBEAT_SECONDS

    now = time.time()
    state = store.db[SCHEDULER_STATE]
    runs = store.db[JOB_RUNS]
    schedulers = [
        {
            "name": doc["name"],
            "host": doc.get("host"),
            "pid": doc.get("pid"),
            "last_heartbeat": _when(doc.get("heartbeat")),
            "alive": now - float(doc.get("heartbeat") or 0) < 3 * HEARTBEAT_SECONDS,
        }
        for doc in state.find({"kind": "scheduler"})
    ]
    jobs = [
        {
            "name": doc["name"],
            "cron": doc.get("cron"),
            "task": doc.get("task"),
            "template": doc.get("template"),
            "projects": doc.get("projects"),
            "next_run": _when(doc.get("next_run_at")),
            "last_fire": _when(doc.get("last_fire")),
            "last_status": doc.get("last_status"),
            "running": float(doc.get("lock_expires") or 0) > now,
            "owner": doc.get("lock_owner"),
        }
        for doc in state.find({"kind": "job"}).sort("name", 1)
    ]
    finished = {"status": {"$in": ["completed", "failed", "skipped"]}}
    return {
        "schedulers": schedulers,
        "jobs": jobs,
        "running": {
            "jobs": [public(doc) for doc in runs.find({"status": "running"})],
            "reports": [
                public(doc) for doc in store.reports.find({"status": "running"}, {"params": 0})
            ],
        },
        "recent_runs": [
            public(doc) for doc in runs.find(finished).sort("started_at", DESCENDING).limit(recent)
        ],
        "recent_reports": [
            public(doc)
            for doc in store.reports.find({"status": {"$in": ["completed", "failed"]}})
            .sort("created_at", DESCENDING)
            .limit(recent)
        ],
        "analysis": queue_stats(store),
    }
