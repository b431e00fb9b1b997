"""SDK payloads: sampled records and per-endpoint metric points (docs/data-model.md)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.schemas.diagnostics import (
    AllocationSite,
    ErrorInfo,
    ExceptionCounts,
    SqlStatements,
    exception_counts,
)

Str = Annotated[str, Field(max_length=4096)]
ShortStr = Annotated[str, Field(max_length=256)]
Seconds = Annotated[float, Field(ge=0.0, le=86_400.0)]
MAX_INT64 = 2**63 - 1  # the store keeps 8-byte integers; larger ones cannot be written
Count = Annotated[int, Field(ge=0, le=MAX_INT64)]
MAX_NODES = 20_000
MAX_FUTURE = timedelta(days=1)

_SENSITIVE = (
    "authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-project-key",
    "x-admin-token",
    "token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "auth",
    "pwd",
    "signature",
    "credential",
    "session",
    "csrf",
)


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE)


def clean_mapping(value: Any) -> dict[str, Any]:
    """A flat str→str mapping safe to store: keys without '$', '.', NUL; secrets redacted."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be an object of names to values")
    out: dict[str, Any] = {}
    for key, item in list(value.items())[:200]:
        name = str(key).replace("\x00", "").replace(".", "\uff0e")
        if name.startswith("$"):
            name = "\uff04" + name[1:]
        if isinstance(item, list):
            item = ", ".join(str(part) for part in item)
        text = "" if item is None else str(item)
        out[name[:256]] = "[Filtered]" if is_sensitive(name) else text[:2048]
    return out


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RequestInfo(_Section):
    method: Annotated[str, Field(min_length=1, max_length=16)]
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    route: Str | None = None
    query_params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)
    user_agent: Str | None = None
    remote_ip: ShortStr | None = None
    body: Annotated[str, Field(max_length=65_536)] | None = None

    _clean = field_validator("query_params", "headers", mode="before")(clean_mapping)

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("path", "route")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "")


class ResponseInfo(_Section):
    status_code: Annotated[int, Field(ge=100, le=599)]
    response_size: Count | None = None
    content_type: ShortStr | None = None
    body: Annotated[str, Field(max_length=65_536)] | None = None


class MemoryUsage(_Section):
    peak_memory: float | None = None
    memory_delta: float | None = None
    allocations: Annotated[list[AllocationSite], Field(max_length=100)] | None = None


class SlowQuery(_Section):
    statement: Annotated[str, Field(max_length=8192)]
    duration: Seconds


class DatabaseMetrics(_Section):
    query_count: Count = 0
    query_time: Seconds = 0.0
    slow_queries: Annotated[list[SlowQuery], Field(max_length=100)] = Field(default_factory=list)
    statements: SqlStatements | None = None


class CacheMetrics(_Section):
    cache_hits: Count = 0
    cache_misses: Count = 0
    cache_time: Seconds = 0.0


class PerformanceMetrics(_Section):
    total_duration: Seconds
    cpu_time: Seconds | None = None
    memory_usage: MemoryUsage = Field(default_factory=MemoryUsage)
    database_metrics: DatabaseMetrics = Field(default_factory=DatabaseMetrics)
    cache_metrics: CacheMetrics = Field(default_factory=CacheMetrics)
    template_time: Seconds | None = None


class CallNode(_Section):
    call_id: Count
    parent_call_id: Count | None = None
    function_name: Annotated[str, Field(max_length=1024)]
    file_path: Annotated[str, Field(max_length=4096)] = ""
    line_number: Count = 0
    duration: Seconds
    self_time: Seconds = 0.0
    depth: Annotated[int, Field(ge=0, le=2048)] = 0
    call_order: Count = 0
    is_application: bool = False


class VersionInfo(_Section):
    app_version: ShortStr | None = None
    git_commit: ShortStr | None = None
    deploy_time: datetime | None = None


class Environment(_Section):
    python_version: ShortStr | None = None
    framework: ShortStr | None = None
    framework_version: ShortStr | None = None
    server_info: dict[str, Any] = Field(default_factory=dict)

    _clean = field_validator("server_info", mode="before")(clean_mapping)


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    trace_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
    # The caller's span when the request carried a W3C traceparent (16 lowercase hex).
    parent_span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    timestamp: datetime
    request_info: RequestInfo
    response_info: ResponseInfo
    performance_metrics: PerformanceMetrics
    function_calls: Annotated[list[CallNode], Field(max_length=MAX_NODES)] = Field(
        default_factory=list
    )
    profile_session: Annotated[str, Field(max_length=8 * 1024 * 1024)] | None = None
    version_info: VersionInfo = Field(default_factory=VersionInfo)
    environment: Environment = Field(default_factory=Environment)
    tags: dict[str, Any] = Field(default_factory=dict)
    error: ErrorInfo | None = None

    _clean = field_validator("tags", mode="before")(clean_mapping)

    @field_validator("timestamp")
    @classmethod
    def _timestamp_utc(cls, value: datetime) -> datetime:
        value = (
            value.replace(tzinfo=timezone.utc)
            if value.tzinfo is None
            else value.astimezone(timezone.utc)
        )
        if value > datetime.now(timezone.utc) + MAX_FUTURE:
            raise ValueError("timestamp lies more than a day in the future; check the host's clock")
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    @model_validator(mode="after")
    def _tree_links(self) -> RecordIn:
        ids = {node.call_id for node in self.function_calls}
        if len(ids) != len(self.function_calls):
            raise ValueError("function_calls: call_id values must be unique")
        for node in self.function_calls:
            if node.parent_call_id is not None and node.parent_call_id not in ids:
                raise ValueError(
                    f"function_calls: node {node.call_id} names a missing parent {node.parent_call_id}"
                )
        return self


class MetricPoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    route: Annotated[str, Field(min_length=1, max_length=4096)]
    method: Annotated[str, Field(min_length=1, max_length=16)]
    status_class: Annotated[str, Field(pattern=r"^[1-5]xx$")]
    app_version: ShortStr | None = None
    interval_start: datetime
    interval_end: datetime
    count: Annotated[int, Field(ge=1, le=MAX_INT64)]
    errors: Count = 0
    duration_sum: Annotated[float, Field(ge=0.0)]
    duration_min: Seconds
    duration_max: Seconds
    histogram: dict[str, Count]
    exceptions: ExceptionCounts

    _exceptions = field_validator("exceptions", mode="before")(exception_counts)

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("interval_start", "interval_end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        value = (
            value.replace(tzinfo=timezone.utc)
            if value.tzinfo is None
            else value.astimezone(timezone.utc)
        )
        if value > datetime.now(timezone.utc) + MAX_FUTURE:
            raise ValueError("lies more than a day in the future; check the host's clock")
        return value

    @field_validator("histogram")
    @classmethod
    def _bucket_keys(cls, value: dict[str, int]) -> dict[str, int]:
        for key in value:
            if not key.isdigit() or int(key) > 10_000:
                raise ValueError(f"histogram key {key!r} is not a bucket index")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MetricPoint:
        if self.errors > self.count:
            raise ValueError("errors cannot exceed count")
        if sum(self.histogram.values()) != self.count:
            raise ValueError("histogram counts must add up to count")
        if self.duration_min > self.duration_max or not math.isfinite(self.duration_sum):
            raise ValueError("duration_min must not exceed duration_max")
        if self.interval_end < self.interval_start:
            raise ValueError("interval_end must not precede interval_start")
        return self


class MetricBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project_key: ShortStr | None = None
    batch_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    metrics: Annotated[list[MetricPoint], Field(max_length=10_000)]
