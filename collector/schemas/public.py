"""The ``data`` of every success envelope, as ``/openapi.json`` describes it.

Stored documents (projects, records, analyses) are described by the fields
every one of them has; the others (``docs/data-model.md``) pass through
unchanged (``extra="allow"``), so a response never loses what the store
holds. Times are ISO 8601 strings, as the envelope encodes them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class _Document(BaseModel):
    """A stored document: the fields named here and every other stored field."""

    model_config = ConfigDict(extra="allow")


class Page(BaseModel):
    total: int = Field(description="matching items (bounded where the listing says so)")
    page: int
    size: int


# -- service ------------------------------------------------------------------


class HealthPublic(BaseModel):
    status: str = Field(description='"ok", or "degraded" while the store does not answer')
    store: str = Field(description='"up" or "down"')
    version: str | None = None


class SdkConfigPublic(BaseModel):
    enabled: bool = Field(description="false: the SDK sends nothing (project inactive or off)")
    sampling_rate: float = Field(description="fraction of requests profiled, in [0, 1]")


# -- projects -----------------------------------------------------------------


class ProjectConfigPublic(_Document):
    sampling_rate: float
    enabled: bool
    auto_analysis: bool
    alert_threshold: dict[str, float] = Field(default_factory=dict)


class ProjectPublic(_Document):
    id: str
    project_key: str = Field(description="the SDK's key (X-Project-Key)")
    name: str
    description: str
    framework: str
    base_url: str | None
    status: str
    config: ProjectConfigPublic
    created_at: Timestamp
    updated_at: Timestamp
    last_activity: Timestamp | None


class ProjectsPublic(Page):
    items: list[ProjectPublic]


class ProjectDeleted(BaseModel):
    project_key: str
    deleted: dict[str, int] = Field(description="documents removed, per collection")


# -- ingest -------------------------------------------------------------------


class RejectedRecord(_Document):
    index: int
    field: str = Field(description="where the record is wrong; empty for the whole record")
    error: str


class CollectResult(BaseModel):
    accepted: int
    duplicates: int = Field(description="records already stored under their trace id")
    rejected: list[RejectedRecord]


class MetricsResult(BaseModel):
    accepted: int
    duplicate_batch: bool = Field(description="the batch id was seen before: nothing stored")


# -- records and trends -------------------------------------------------------


class RecordPublic(_Document):
    """A sampled request's record, without its call tree."""

    id: str
    record_key: str = Field(
        description="the record's identity: <trace id>-<span id> (the trace id for records sent without a span id)"
    )
    trace_id: str = Field(description="shared by every request of one distributed trace")
    project_key: str


class RecordsPage(Page):
    items: list[RecordPublic]
    total_exact: bool = Field(description="false when there are more than `total` matches")
    next_cursor: str | None = Field(description="opens the next keyset page")


class RecordDetail(RecordPublic):
    """A record with the flattened nodes of its call tree."""

    function_calls: list[dict[str, Any]]
    application_root: Any = None
    has_session: bool = Field(description="the pyinstrument session is stored too")


class TrendStats(_Document):
    """Requests of a window (and ``p50``/``p95``/``p99`` from the histograms)."""

    count: int
    errors: int
    error_rate: float
    throughput: float = Field(description="requests per second")
    avg: float | None
    min: float | None
    max: float | None


class TrendsPublic(BaseModel):
    since: Timestamp
    until: Timestamp
    bucket_seconds: int
    resolution: str = Field(description="the metric documents read: 1m, 10m or 1h")
    percentile_relative_error: float
    summary: TrendStats
    buckets: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]


# -- analysis -----------------------------------------------------------------


class AnalysisQueued(BaseModel):
    task_id: str
    analysis_id: str
    status: str
    trace_id: str
    record_key: str


class BatchItemQueued(BaseModel):
    record_id: str
    task_id: str
    analysis_id: str
    status: str


class BatchItemSkipped(BaseModel):
    record_id: str
    code: int
    reason: str


class BatchQueued(BaseModel):
    batch_id: str
    queued: list[BatchItemQueued]
    skipped: list[BatchItemSkipped]


class AnalysisPublic(_Document):
    """An analysis job and, once completed, its ``analysis_results``."""

    id: str
    status: str
    project_key: str


class TaskStatus(_Document):
    task_id: str
    analysis_id: str
    status: str
    project_key: str
    trace_id: str | None
    record_key: str | None = None
    attempts: int
    worker: Any = None
    error: Any = None
    created_at: Timestamp | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class AnalysesPage(Page):
    items: list[AnalysisPublic]


class AIServicePublic(_Document):
    """One AI service, without its key or header values."""

    name: str
    provider: str
    model: str | None
    endpoint: str | None


class AIServicesPublic(BaseModel):
    default_service: str | None
    services: list[AIServicePublic]
    prompt_templates: list[str]
    fallback_to_rules: bool
