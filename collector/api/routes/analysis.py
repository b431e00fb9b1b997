"""AI analysis (SPEC §4): queue analyses as jobs, read results, task status, history, config.

The collector only creates and reads job documents; ``pystrument worker``
processes run them. Nothing here imports litellm.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from collector.deps import AdminDep, ReadStoreDep, StoreDep
from collector.envelope import Envelope, ok
from collector.schemas.public import (
    AIServicesPublic,
    AnalysesPage,
    AnalysisPublic,
    AnalysisQueued,
    BatchQueued,
    TaskStatus,
)
from pystrument_lab.analysis import jobs
from pystrument_lab.analysis.config import load_config
from pystrument_lab.errors import InvalidPerformanceData, ParameterError, PystrumentError
from pystrument_lab.store import Store

router = APIRouter(prefix="/api/v1/analysis", tags=["analysis"], dependencies=[AdminDep])

MAX_BATCH = 500


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # no coercion across types (7.0 is not a priority)

    service: str | None = Field(None, description="AI service name; 'rules' for the rule engine")
    model: str | None = Field(None, description="override the service's model")
    priority: int = Field(jobs.PRIORITY_MANUAL, ge=0, le=9, description="higher runs first")
    analysis_type: Literal["manual", "auto", "scheduled"] = "manual"


class BatchRequest(AnalyzeRequest):
    record_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    project_key: str | None = Field(None, description="needed when record_ids are trace ids")


def _record(store: Store, record_id: str, project_key: str | None) -> dict[str, Any]:
    """A record by its id (as the records API returns it), or within a project by its
    record key or a trace id that only one of its records has (409 when several do)."""
    if project_key is not None:
        store.get_project(project_key)
    record = store.get_record_by_id(record_id)
    if record is not None and project_key in (None, record["project_key"]):
        return record
    if project_key is not None:
        try:
            return store.resolve_record(record_id, project_key)
        except ParameterError as exc:
            if exc.status != 404:
                raise
    hint = "" if project_key else " (for a record key or trace id, pass project_key)"
    raise InvalidPerformanceData(f"no performance record {record_id!r}{hint}", status=404)


def _check_service(service: str | None) -> None:
    load_config().service(service)  # raises 20005 for a service that is not configured


def _queue(
    store: Store, record: dict[str, Any], body: AnalyzeRequest, batch_id: str | None = None
) -> dict[str, Any]:
    job = jobs.create_job(
        store,
        record["project_key"],
        trace_id=record["trace_id"],
        span_id=record.get("span_id"),
        service=body.service,
        model=body.model,
        priority=body.priority,
        analysis_type="batch" if batch_id else body.analysis_type,
        batch_id=batch_id,
    )
    return {"task_id": job["task_id"], "analysis_id": job["id"], "status": job["status"]}


@router.post("/analyze/{performance_record_id}", summary="Queue an analysis of one record")
def analyze(
    performance_record_id: str,
    store: StoreDep,
    body: AnalyzeRequest | None = None,
    project_key: str | None = None,
) -> Envelope[AnalysisQueued]:
    body = body or AnalyzeRequest()
    _check_service(body.service)
    record = _record(store, performance_record_id, project_key)
    queued = _queue(store, record, body)
    return ok({**queued, "trace_id": record["trace_id"], "record_key": record["record_key"]})


@router.post("/batch", summary="Queue analyses of many records")
def batch(body: BatchRequest, store: StoreDep) -> Envelope[BatchQueued]:
    _check_service(body.service)
    if body.project_key is not None:
        store.get_project(body.project_key)
    batch_id = uuid.uuid4().hex
    queued: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for record_id in body.record_ids:
        try:
            record = _record(store, record_id, body.project_key)
            queued.append({"record_id": record_id, **_queue(store, record, body, batch_id)})
        except PystrumentError as exc:
            skipped.append({"record_id": record_id, "code": int(exc.code), "reason": exc.message})
    return ok({"batch_id": batch_id, "queued": queued, "skipped": skipped})


@router.get("/result/{analysis_id}", summary="One analysis (pending, running, completed or failed)")
def result(analysis_id: str, store: ReadStoreDep) -> Envelope[AnalysisPublic]:
    found = jobs.get_analysis(store, analysis_id)
    if found is None:
        raise ParameterError(f"no analysis {analysis_id!r}", status=404)
    return ok(found)


@router.get("/task-status/{task_id}", summary="Where an analysis task is")
def task_status(task_id: str, store: ReadStoreDep) -> Envelope[TaskStatus]:
    found = jobs.get_task(store, task_id)
    if found is None:
        raise ParameterError(f"no analysis task {task_id!r}", status=404)
    return ok(found)


@router.get("/history/{project_key}", summary="A project's analyses, newest first")
def history(
    project_key: str,
    store: ReadStoreDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,  # skip = (page - 1) * size fits int64
    size: Annotated[int, Query(ge=1, le=200)] = 20,
    status: Literal["pending", "running", "completed", "failed"] | None = None,
    trace_id: str | None = None,
) -> Envelope[AnalysesPage]:
    store.get_project(project_key)
    items, total = jobs.history(
        store, project_key, status=status, trace_id=trace_id, skip=(page - 1) * size, limit=size
    )
    return ok({"items": items, "total": total, "page": page, "size": size})


@router.get("/config/ai-services", summary="The configured AI services (no secrets)")
def ai_services() -> Envelope[AIServicesPublic]:
    return ok(load_config().public())
