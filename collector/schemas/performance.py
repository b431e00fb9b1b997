"""SDK payloads: sampled records and per-endpoint metric points (docs/data-model.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from performance_monitor.core.redaction import DEFAULT_POLICY, RedactionPolicy
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from collector.payload import clean_key, clean_text
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
#: Requests one metric point may count: far beyond any real interval, and small
#: enough that the store's sums of many points stay within int64.
MAX_POINT_COUNT = 10**12
PointCount = Annotated[int, Field(ge=0, le=MAX_POINT_COUNT)]
#: Bytes of memory a record may report, either sign (a petabyte).
Bytes = Annotated[float, Field(ge=-(10**15), le=10**15)]
MAX_NODES = 20_000
MAX_FUTURE = timedelta(days=1)


def is_sensitive(name: str) -> bool:
    return DEFAULT_POLICY.is_sensitive(name)


def _policy(info: ValidationInfo) -> RedactionPolicy:
    context = info.context
    policy = context.get("redaction") if isinstance(context, dict) else None
    return policy if isinstance(policy, RedactionPolicy) else DEFAULT_POLICY


def clean_mapping(value: Any, policy: RedactionPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """A flat str→str mapping safe to store: keys without '$', '.', NUL; secrets redacted."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be an object of names to values")
    out: dict[str, Any] = {}
    for key, item in list(value.items())[:200]:
        name = clean_key(str(key)).replace(".", "\uff0e")
        if name.startswith("$"):
            name = "\uff04" + name[1:]
        if isinstance(item, list):
            item = ", ".join(str(part) for part in item)
        text = "" if item is None else clean_text(str(item))
        out[name[:256]] = text[:2048]
    return policy.headers(out)


def cleaned_field(value: Any, info: ValidationInfo) -> dict[str, Any]:
    """:func:`clean_mapping` as a field validator, with the policy of the validation context."""
    return clean_mapping(value, _policy(info))


def redacted_body(value: Any, info: ValidationInfo) -> Any:
    """A captured body with the policy's sensitive fields replaced (JSON or form-encoded)."""
    if not isinstance(value, str):
        return value
    return _policy(info).body(value.encode("utf-8", "replace"), len(value) + 1024)


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class RequestInfo(_Section):
    method: Annotated[str, Field(min_length=1, max_length=16)]
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    route: Str | None = None
    query_params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)
    user_agent: Str | None = None
    remote_ip: ShortStr | None = None
    body: Annotated[str, Field(max_length=65_536)] | None = None

    _clean = field_validator("query_params", "headers", mode="before")(cleaned_field)
    _body = field_validator("body")(redacted_body)

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("path", "route")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value).replace("\x00", "")


class ResponseInfo(_Section):
    status_code: Annotated[int, Field(ge=100, le=599)]
    response_size: Count | None = None
    content_type: ShortStr | None = None
    body: Annotated[str, Field(max_length=65_536)] | None = None

    _body = field_validator("body")(redacted_body)


class MemoryUsage(_Section):
    peak_memory: Bytes | None = None
    memory_delta: Bytes | None = None
    allocations: Annotated[list[AllocationSite], Field(max_length=100)] | None = None


class SlowQuery(_Section):
    statement: Annotated[str, Field(max_length=8192)]
    duration: Seconds


class DatabaseMetrics(_Section):
    query_count: Count = 0
    query_time: Seconds = 0.0
    slow_queries: Annotated[list[SlowQuery], Field(max_length=100)] = Field(default_factory=list)
    statements: SqlStatements | None = None
    slow_query_count: Count = 0

    @model_validator(mode="before")
    @classmethod
    def _slow_query_count(cls, data: Any) -> Any:
        # The original data model sends ``slow_queries`` as a count; keep it
        # as ``slow_query_count`` beside the (then empty) list of statements.
        if not isinstance(data, dict):
            return data
        slow = data.get("slow_queries")
        if isinstance(slow, int) and not isinstance(slow, bool):
            return {**data, "slow_queries": [], "slow_query_count": slow}
        if isinstance(slow, list):
            given = data.get("slow_query_count")
            count = given if isinstance(given, int) and given >= len(slow) else len(slow)
            return {**data, "slow_query_count": count}
        return data


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
    #: Seconds the request's thread was ready to run but waited for a CPU (Linux).
    run_queue_time: Seconds | None = None
    #: Voluntary context switches of the request's thread (Linux): how often it blocked.
    context_switches: Count | None = None


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

    _clean = field_validator("server_info", mode="before")(cleaned_field)


def _valid_span(value: str) -> str:
    if value == "0" * 16:
        raise ValueError("an all-zero span id is invalid (W3C Trace Context)")
    return value


#: A W3C span id: 16 lowercase hex characters, not all zero.
SpanId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$"), AfterValidator(_valid_span)]


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    trace_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
    # The request's own span (16 lowercase hex, not all zero): with the trace id, the
    # record's identity. Records of older SDKs have none and are keyed by trace id alone.
    span_id: SpanId | None = None
    # The caller's span when the request carried a W3C traceparent (16 lowercase hex).
    parent_span_id: SpanId | None = None
    timestamp: datetime
    request_info: RequestInfo
    response_info: ResponseInfo
    performance_metrics: PerformanceMetrics
    function_calls: Annotated[list[CallNode], Field(max_length=MAX_NODES)] = Field(
        default_factory=list
    )
    # The call_id of the tree's outermost application frame (docs/data-model.md).
    application_root: Count | None = None
    profile_session: Annotated[str, Field(max_length=8 * 1024 * 1024)] | None = None
    version_info: VersionInfo = Field(default_factory=VersionInfo)
    environment: Environment = Field(default_factory=Environment)
    tags: dict[str, Any] = Field(default_factory=dict)
    error: ErrorInfo | None = None

    _clean = field_validator("tags", mode="before")(cleaned_field)

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

    @field_validator("function_calls", mode="before")
    @classmethod
    def _explicit_parents(cls, value: Any) -> Any:
        return infer_parents(value)

    @field_validator("function_calls")
    @classmethod
    def _tree_shape(cls, nodes: list[CallNode]) -> list[CallNode]:
        problem = tree_problem(nodes)
        if problem is not None:
            raise PydanticCustomError("call_tree", problem)
        return nodes

    @model_validator(mode="after")
    def _application_root(self) -> RecordIn:
        ids = {node.call_id for node in self.function_calls}
        if self.application_root is not None and self.application_root not in ids:
            raise ValueError(f"application_root: no node {self.application_root} in function_calls")
        return self


def infer_parents(nodes: Any) -> Any:
    """Give a node sent without ``parent_call_id`` the parent its pre-order ``depth`` names."""
    if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
        return nodes
    out: list[Any] = []
    open_path: list[Any] = []  # call ids of the current root-to-node path, by depth
    for node in nodes:
        depth = node.get("depth", 0)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            return nodes  # let field validation report it
        if "parent_call_id" not in node and 0 < depth <= len(open_path):
            node = {**node, "parent_call_id": open_path[depth - 1]}
        del open_path[depth:]
        open_path.append(node.get("call_id"))
        out.append(node)
    return out


def tree_problem(nodes: list[CallNode]) -> str | None:
    """Why ``nodes`` are not one tree, or None: one root, unique ids, parents present,
    each depth its parent's plus one.

    Depth rising by one along every parent link rules out cycles and
    self-parents: following parents strictly lowers the depth, so every chain
    ends at the single root.
    """
    if not nodes:
        return None
    by_id: dict[int, CallNode] = {}
    for node in nodes:
        if node.call_id in by_id:
            return f"call_id {node.call_id} appears twice"
        by_id[node.call_id] = node
    roots = sum(1 for node in nodes if node.parent_call_id is None)
    if roots != 1:
        return f"a call tree has exactly one root (a node without parent_call_id), this one has {roots}"
    for node in nodes:
        if node.parent_call_id is None:
            continue
        parent = by_id.get(node.parent_call_id)
        if parent is None:
            return f"node {node.call_id} names a missing parent {node.parent_call_id}"
        if node.depth != parent.depth + 1:
            return (
                f"node {node.call_id} has depth {node.depth} under a parent of depth "
                f"{parent.depth}; a child lies one level below its parent"
            )
    return None


class MetricPoint(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    route: Annotated[str, Field(min_length=1, max_length=4096)]
    method: Annotated[str, Field(min_length=1, max_length=16)]
    status_class: Annotated[str, Field(pattern=r"^[1-5]xx$")]
    app_version: ShortStr | None = None
    interval_start: datetime
    interval_end: datetime
    count: Annotated[int, Field(ge=1, le=MAX_POINT_COUNT)]
    errors: PointCount = 0
    duration_sum: Annotated[float, Field(ge=0.0, le=MAX_POINT_COUNT * 86_400.0)]
    duration_min: Seconds
    duration_max: Seconds
    histogram: Annotated[dict[str, PointCount], Field(max_length=10_001)]
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
        if self.duration_min > self.duration_max:
            raise ValueError("duration_min must not exceed duration_max")
        if self.duration_sum > self.count * self.duration_max * (1 + 1e-9) + 1e-9:
            raise ValueError("duration_sum cannot exceed count × duration_max")
        if self.interval_end < self.interval_start:
            raise ValueError("interval_end must not precede interval_start")
        return self


class MetricBatch(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    project_key: ShortStr | None = None
    batch_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    metrics: Annotated[list[MetricPoint], Field(max_length=10_000)]
