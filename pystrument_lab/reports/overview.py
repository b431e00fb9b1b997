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

from pystrument_lab.store import Store

__all__ = ["job_overview"]


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch else None


def job_overview(store: Store, *, recent: int = 10) -> dict[str, Any]:
    """Schedulers alive, scheduled jobs, running work, recent runs and reports, analysis queues."""
    from pystrument_lab.analysis.jobs import queue_stats
    from pystrument_lab.reports.scheduler import HEARTBEAT_SECONDS

    now = time.time()
    schedulers = [
        {
            "name": doc["name"],
            "host": doc.get("host"),
            "pid": doc.get("pid"),
            "last_heartbeat": _when(doc.get("heartbeat")),
            "alive": now - float(doc.get("heartbeat") or 0) < 3 * HEARTBEAT_SECONDS,
        }
        for doc in store.schedulers()
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
        for doc in store.scheduled_jobs()
    ]
    return {
        "schedulers": schedulers,
        "jobs": jobs,
        "running": {
            "jobs": store.running_job_runs(),
            "reports": store.running_reports(),
        },
        "recent_runs": store.recent_job_runs(recent),
        "recent_reports": store.list_reports(status=["completed", "failed"], limit=recent),
        "analysis": queue_stats(store),
    }
