"""Analysis jobs: documents in ``ai_analysis_results`` that workers claim and complete.

A job is the analysis document itself (SPEC §3) plus the fields a worker
needs: ``status`` (pending → running → completed | failed), ``task_id``,
``priority`` (higher first), ``target`` (one record, or an endpoint),
``service``/``model``, and while running a lease: ``worker``, ``claim`` (a
token unique to this claim) and ``lease_expires`` (float epoch seconds, so
the embedded server compares numbers, not dates); when done,
``completed_epoch`` beside ``completed_at`` for the same reason.

Jobs go to one of two queues (SPEC §7): ``analysis`` (one record or one
endpoint, manual or automatic) and ``batch`` (the jobs of a batch request),
so a worker started with ``--queues analysis`` keeps answering single
analyses while a large batch drains elsewhere. The other two queues of the
original, maintenance and reports, are the scheduler's jobs
(:mod:`pystrument_lab.reports.scheduler`), which run in their own process.

A worker claims with one ``find_one_and_update``; it renews the lease while
the job runs; a job whose lease expired (its worker died) is claimed again.
Completion is conditional on the claim token, so a job completes exactly
once even when a slow worker and its successor both finish.

Light on purpose: the collector imports :func:`enqueue_auto_analyses`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pystrument_lab.errors import AnalysisInProgress, ParameterError
from pystrument_lab.store import Store, public, record_key, utcnow

__all__ = [
    "ACTIVE",
    "claim_job",
    "create_job",
    "enqueue_auto_analyses",
    "finish_job",
    "get_analysis",
    "get_task",
    "history",
    "queue_stats",
    "renew_lease",
]

logger = logging.getLogger("pystrument_lab.analysis")

PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
ACTIVE = [PENDING, RUNNING]
PRIORITY_MANUAL = 5
PRIORITY_AUTO = 1
MAX_ATTEMPTS = 3
ANALYSIS_TYPES = ("auto", "manual", "scheduled", "batch")
QUEUES = ("analysis", "batch")


def create_job(
    store: Store,
    project_key: str,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    route: str | None = None,
    method: str | None = None,
    app_version: str | None = None,
    service: str | None = None,
    model: str | None = None,
    priority: int = PRIORITY_MANUAL,
    analysis_type: str = "manual",
    batch_id: str | None = None,
) -> dict[str, Any]:
    """Queue an analysis of one record (``trace_id`` and its ``span_id``, when it has
    one) or an endpoint (``route``).

    The job names the record by its ``record_key`` and keeps its trace id.
    Raises 20006 when the record already has a pending or running analysis.
    """
    if (trace_id is None) == (route is None):
        raise ParameterError(
            "an analysis targets either a record (trace_id) or an endpoint (route)"
        )
    if analysis_type not in ANALYSIS_TYPES:
        raise ParameterError(f"analysis_type must be one of {', '.join(ANALYSIS_TYPES)}")
    key = None
    if trace_id is not None:
        key = record_key(trace_id, span_id)
        active = store.active_analysis(project_key, key)
        if active is not None:
            raise AnalysisInProgress(
                f"record {key} is already being analysed (analysis {active['_id']}, {active['status']})",
                data={
                    "analysis_id": str(active["_id"]),
                    "task_id": active["task_id"],
                    "status": active["status"],
                },
            )
    target: dict[str, Any] = (
        {"kind": "record"}
        if trace_id
        else {
            "kind": "endpoint",
            "route": route,
            "method": method,
            "app_version": app_version,
        }
    )
    document: dict[str, Any] = {
        "_id": store.new_analysis_id(),
        "task_id": uuid.uuid4().hex,
        "project_key": project_key,
        "trace_id": trace_id,
        "record_key": key,
        "route": route,
        "target": target,
        "analysis_type": analysis_type,
        "service": service,
        "model": model,
        "priority": int(priority),
        "batch_id": batch_id,
        "queue": "batch" if batch_id else "analysis",
        "status": PENDING,
        "attempts": 0,
        "worker": None,
        "claim": None,
        "lease_expires": None,
        "ai_service": None,
        "analysis_input": None,
        "analysis_results": None,
        "analysis_metadata": None,
        "error": None,
        "created_at": utcnow(),
        "started_at": None,
        "completed_at": None,
    }
    store.insert_analysis(document)
    return public(document)  # type: ignore[return-value]


def enqueue_auto_analyses(
    store: Store,
    project_key: str,
    records: Sequence[Mapping[str, Any]],
    project: Mapping[str, Any] | None = None,
) -> int:
    """Queue automatic analyses for records slower than the project's threshold.

    Called by the collector's ingest: it only inserts pending jobs, never
    analyses in the request. A record the SDK marked (``tags.ai_analysis``)
    counts as over the threshold. Never raises; returns the number queued.
    ``project`` saves a read when the caller already holds the project.
    """
    try:
        if project is None:
            project = store.find_project(project_key)
        config = (project or {}).get("config") or {}
        if not config.get("auto_analysis"):
            return 0
        threshold = float((config.get("alert_threshold") or {}).get("response_time") or 1.0)
        queued = 0
        for record in records:
            duration = float((record.get("performance_metrics") or {}).get("total_duration") or 0.0)
            requested = (record.get("tags") or {}).get("ai_analysis") == "requested"
            trace_id = record.get("trace_id")
            if not trace_id or (duration <= threshold and not requested):
                continue
            span_id = record.get("span_id")
            if store.has_analysis(project_key, record_key(str(trace_id), span_id)):
                continue
            create_job(
                store,
                project_key,
                trace_id=str(trace_id),
                span_id=span_id,
                priority=PRIORITY_AUTO,
                analysis_type="auto",
            )
            queued += 1
        return queued
    except Exception:  # ingest must not fail because an analysis could not be queued
        logger.exception("could not queue automatic analyses")
        return 0


def claim_job(
    store: Store, worker: str, lease: float, queues: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """Claim the next job atomically: an expired lease first, then the best pending job.

    ``queues`` limits the claim to those queues (default: every queue).
    """
    claim = uuid.uuid4().hex
    changes = {"status": RUNNING, "worker": worker, "claim": claim}
    for expired_before in (time.time(), None):
        job = store.claim_analysis(
            expired_before=expired_before,
            queues=queues,
            changes={**changes, "lease_expires": time.time() + lease},
        )
        if job is not None and job.get("claim") == claim:
            return job
    return None


def queue_stats(store: Store, *, window: float = 86_400.0) -> dict[str, Any]:
    """Per queue: jobs waiting and running, and those finished within ``window`` seconds.

    Also the workers holding a live lease now (the original's "active tasks").
    """
    since = time.time() - window
    states = (PENDING, RUNNING, COMPLETED, FAILED)
    queues = {name: dict.fromkeys(states, 0) for name in QUEUES}

    def count(doc: Mapping[str, Any]) -> None:
        queue = doc.get("queue") or "analysis"  # jobs queued before queues existed
        queues.setdefault(queue, dict.fromkeys(states, 0))[doc["status"]] += 1

    active = store.active_analyses()
    workers: dict[str, int] = {}
    now = time.time()
    for doc in active:
        count(doc)
        if doc["status"] == RUNNING and float(doc.get("lease_expires") or 0) > now:
            workers[doc["worker"]] = workers.get(doc["worker"], 0) + 1
    # completed_epoch, not completed_at: the embedded server cannot compare
    # dates written by $currentDate (docs/data-model.md)
    for doc in store.finished_analyses(since):
        count(doc)
    return {"window_seconds": window, "queues": queues, "workers": workers}


def renew_lease(store: Store, job: Mapping[str, Any], lease: float) -> bool:
    """Extend a running job's lease; False when the claim was lost."""
    return store.update_claimed_analysis(
        job["_id"], job["claim"], {"lease_expires": time.time() + lease}, completed=False
    )


def finish_job(store: Store, job: Mapping[str, Any], outcome: Mapping[str, Any]) -> bool:
    """Store the outcome if this claim still holds the job; True when it did."""
    fields = {
        key: outcome.get(key)
        for key in (
            "status",
            "ai_service",
            "analysis_input",
            "analysis_results",
            "analysis_metadata",
            "error",
        )
    }
    return store.update_claimed_analysis(
        job["_id"],
        job["claim"],
        {**fields, "lease_expires": None, "completed_epoch": time.time()},
        completed=True,
    )


def get_analysis(store: Store, analysis_id: str) -> dict[str, Any] | None:
    return store.get_analysis(analysis_id)


def get_task(store: Store, task_id: str) -> dict[str, Any] | None:
    job = store.analysis_by_task(task_id)
    if job is None:
        return None
    return {
        "task_id": job["task_id"],
        "analysis_id": str(job["_id"]),
        "status": job["status"],
        "project_key": job["project_key"],
        "trace_id": job.get("trace_id"),
        "record_key": job.get("record_key"),
        "attempts": job.get("attempts", 0),
        "worker": job.get("worker"),
        "error": job.get("error"),
        "created_at": job.get("created_at"),
        "started_at": job.get("started_at"),
        "completed_at": job.get("completed_at"),
    }


def history(
    store: Store,
    project_key: str,
    *,
    status: str | None = None,
    trace_id: str | None = None,
    skip: int = 0,
    limit: int = 20,
) -> tuple[list[dict[str, Any]], int]:
    """A project's analyses, newest first, and their total count."""
    return store.analysis_history(
        project_key, status=status, trace_id=trace_id, skip=skip, limit=limit
    )
