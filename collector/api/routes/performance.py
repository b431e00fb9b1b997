from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from collector.deps import (
    AdminDep,
    ReadStoreDep,
    SettingsDep,
    StoreDep,
    authenticated_payload,
    run_ingest_thread,
)
from collector.envelope import Envelope, ok
from collector.ingest import split_batch, validate_metrics, validate_records
from collector.schemas.public import (
    CollectResult,
    MetricsResult,
    RecordDetail,
    RecordsPage,
    TrendsPublic,
)
from pystrument_lab import trends
from pystrument_lab.analysis.jobs import enqueue_auto_analyses
from pystrument_lab.errors import InvalidPerformanceData, ParameterError
from pystrument_lab.store import Store

router = APIRouter(prefix="/api/v1/performance", tags=["performance"])


@router.post("/collect", summary="SDK: submit sampled request records (one or a batch)")
async def collect(
    request: Request, store: StoreDep, settings: SettingsDep
) -> Envelope[CollectResult]:
    project, payload = await authenticated_payload(request, store, settings.max_request_size)
    _, raw = split_batch(payload, settings.max_batch_size)
    valid, rejected = validate_records(raw, settings.redaction_policy)
    if not valid:
        first = rejected[0]
        raise InvalidPerformanceData(
            f"{first['field']}: {first['error']}" if first["field"] else first["error"],
            data={"accepted": 0, "duplicates": 0, "rejected": rejected},
        )
    accepted, duplicates = await run_ingest_thread(request, _store_records, store, project, valid)
    return ok({"accepted": accepted, "duplicates": duplicates, "rejected": rejected})


def _store_records(
    store: Store, project: dict[str, Any], records: list[dict[str, Any]]
) -> tuple[int, int]:
    project_key = project["project_key"]
    accepted, duplicates = store.insert_records(project_key, records)
    store.touch_project(project_key)
    enqueue_auto_analyses(store, project_key, records, project)
    return accepted, duplicates


@router.post("/metrics", summary="SDK: submit per-endpoint aggregates of every request")
async def metrics(
    request: Request, store: StoreDep, settings: SettingsDep
) -> Envelope[MetricsResult]:
    project, payload = await authenticated_payload(request, store, settings.max_request_size)
    batch = validate_metrics(payload, settings.max_metric_points, settings.max_metric_keys)
    stored = await run_ingest_thread(
        request, _store_metrics, store, project["project_key"], batch.batch_id, batch
    )
    return ok(stored)


def _store_metrics(
    store: Store, project_key: str, batch_id: str | None, batch: Any
) -> dict[str, Any]:
    # The batch marker goes first: after a failure half-way a resent batch is
    # ignored (some points lost) rather than counted twice.
    if batch_id is not None and not store.claim_metric_batch(project_key, batch_id):
        return {"accepted": 0, "duplicate_batch": True}
    points = [point.model_dump() for point in batch.metrics]
    accepted = store.add_metrics(project_key, points)
    store.touch_project(project_key)
    return {"accepted": accepted, "duplicate_batch": False}


@router.get(
    "/records", summary="Sampled records with filters, sort and pagination", dependencies=[AdminDep]
)
def records(
    store: ReadStoreDep,
    project_key: str,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,  # skip = (page - 1) * size fits int64
    size: Annotated[int, Query(ge=1, le=500)] = 20,
    route: str | None = None,
    trace_id: Annotated[
        str | None, Query(max_length=128, description="every record of one distributed trace")
    ] = None,
    path: str | None = None,
    method: str | None = None,
    status_code: Annotated[int | None, Query(ge=100, le=599)] = None,
    app_version: str | None = None,
    time_range: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_duration: Annotated[float | None, Query(ge=0, le=86_400)] = None,
    sort: Annotated[str, Query(pattern=r"^[+-]?[a-z_]+$")] = "-timestamp",
    # A cursor carries the ids shown at its last value (ties): ~36 characters each, so
    # 12,000 holds ~300 records of one exact timestamp or duration. uvicorn refuses
    # request lines past 16 KB (h11's default), so a longer one could not arrive anyway.
    cursor: Annotated[str | None, Query(max_length=12_000)] = None,
) -> Envelope[RecordsPage]:
    """Offset pages (``page``, up to 10,000 records deep) or keyset pages (``cursor``).

    ``total`` counts the matches up to 1,000; ``total_exact`` is false when
    there are more ("1,000+"). ``next_cursor`` (sorts by timestamp or
    duration) opens the next page at the same cost at any depth.
    """
    store.get_project(project_key)
    since = None if since is None else trends.bounded_instant(since, "since")
    if until is not None:
        until = trends.bounded_instant(until, "until")
    if time_range is not None:
        span = trends.window(time_range, until=until)
        since, until = span.since, span.until
    found = store.page_records(
        project_key,
        route=route,
        trace_id=trace_id,
        path=path,
        method=method,
        status_code=status_code,
        app_version=app_version,
        since=since,
        until=until,
        min_duration=min_duration,
        sort=sort,
        skip=(page - 1) * size,
        limit=size,
        cursor=cursor,
    )
    return ok(
        {
            "items": found.items,
            "total": found.count,
            "total_exact": found.count_exact,
            "page": page,
            "size": size,
            "next_cursor": found.next_cursor,
        }
    )


@router.get(
    "/records/{project_key}/{record_key}",
    summary="One record with its call tree",
    dependencies=[AdminDep],
)
def record(project_key: str, record_key: str, store: ReadStoreDep) -> Envelope[RecordDetail]:
    """``record_key`` is ``<trace id>-<span id>``, or a trace id that only one record
    of the project has; a trace with several is answered 409 with ``data.records``
    naming each (``/records?trace_id=`` lists them too)."""
    try:
        found = store.resolve_record(record_key, project_key)
    except ParameterError as exc:
        if exc.status != 404:
            raise
        raise InvalidPerformanceData(
            f"no record {record_key!r} in this project", status=404
        ) from exc
    tree = store.get_call_tree(project_key, found["record_key"])
    found["function_calls"] = tree["nodes"] if tree else []
    found["application_root"] = tree.get("application_root") if tree else None
    found["has_session"] = bool(tree and tree.get("session"))
    return ok(found)


@router.get(
    "/trends/{project_key}",
    summary="Throughput, latency percentiles and error rate over time",
    dependencies=[AdminDep],
)
def project_trends(
    project_key: str,
    store: ReadStoreDep,
    time_range: str = "24h",
    bucket: str | None = None,
    route: str | None = None,
    method: str | None = None,
    app_version: str | None = None,
) -> Envelope[TrendsPublic]:
    store.get_project(project_key)
    span = trends.window(time_range, bucket=bucket)
    return ok(
        trends.project_trends(
            store, project_key, span, route=route, method=method, app_version=app_version
        )
    )
