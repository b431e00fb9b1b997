"""Loader rows as DataFrames: the column schemas of :mod:`pystrument_lab.loaders`
(documented there, once), the conversion of a stored record into a row, and
:func:`to_frame`, typed by ``engine``. polars loads on the first conversion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from pystrument_lab.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

Engine = Literal["polars", "pandas"]

_F, _I, _S, _B, _T = "float", "int", "str", "bool", "time"

RECORD_COLUMNS: dict[str, str] = {
    "id": _S, "record_key": _S, "trace_id": _S, "span_id": _S, "parent_span_id": _S,
    "timestamp": _T, "method": _S, "path": _S, "route": _S,
    "status_code": _I, "total_duration": _F, "cpu_time": _F, "query_count": _I,
    "query_time": _F, "slow_query_count": _I, "cache_hits": _I, "cache_misses": _I,
    "cache_time": _F, "peak_memory": _F, "memory_delta": _F, "response_size": _I,
    "app_version": _S, "git_commit": _S, "framework": _S, "python_version": _S,
    "host": _S, "node_count": _I, "error_type": _S, "statement_count": _I,
}  # fmt: skip
EXCEPTION_COLUMNS: dict[str, str] = {"route": _S, "method": _S, "exception": _S, "count": _I}
EXCEPTION_TREND_COLUMNS: dict[str, str] = {"bucket_start": _T, "exception": _S, "count": _I}
STAT_COLUMNS: dict[str, str] = {
    "count": _I, "errors": _I, "error_rate": _F, "throughput": _F, "avg": _F,
    "min": _F, "max": _F, "p50": _F, "p95": _F, "p99": _F,
}  # fmt: skip
ENDPOINT_COLUMNS: dict[str, str] = {"route": _S, "method": _S, **STAT_COLUMNS}
TREND_COLUMNS: dict[str, str] = {"bucket_start": _T, **STAT_COLUMNS}
VERSION_COLUMNS: dict[str, str] = {
    "app_version": _S, "count": _I, "errors": _I, "error_rate": _F, "p50": _F, "p95": _F,
    "p99": _F, "first_seen": _T, "last_seen": _T,
}  # fmt: skip
PROJECT_COLUMNS: dict[str, str] = {
    "project_key": _S, "name": _S, "framework": _S, "status": _S, "sampling_rate": _F,
    "enabled": _B, "auto_analysis": _B, "created_at": _T, "last_activity": _T,
}  # fmt: skip


@overload
def to_frame(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, str], engine: Literal["polars"]
) -> pl.DataFrame: ...
@overload
def to_frame(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, str], engine: Literal["pandas"]
) -> pd.DataFrame: ...
@overload
def to_frame(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, str], engine: Engine
) -> pl.DataFrame | pd.DataFrame: ...
def to_frame(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, str], engine: Engine
) -> pl.DataFrame | pd.DataFrame:
    """A DataFrame with exactly ``schema``'s columns and types, even when empty."""
    import polars as pl

    dtypes: dict[str, Any] = {
        _F: pl.Float64,
        _I: pl.Int64,
        _S: pl.String,
        _B: pl.Boolean,
        _T: pl.Datetime("us", "UTC"),
    }
    frame = pl.DataFrame(
        {name: [row.get(name) for row in rows] for name in schema},
        schema={name: dtypes[kind] for name, kind in schema.items()},
        strict=False,
    )
    if engine == "polars":
        return frame
    if engine == "pandas":
        return frame.to_pandas()
    raise ParameterError(f"engine must be 'polars' or 'pandas', not {engine!r}")


def record_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one stored record into a records() row."""
    metrics = doc.get("performance_metrics") or {}
    database = metrics.get("database_metrics") or {}
    cache = metrics.get("cache_metrics") or {}
    memory = metrics.get("memory_usage") or {}
    environment = doc.get("environment") or {}
    server = environment.get("server_info") or {}
    statements = database.get("statements") or {}
    return {
        "id": str(doc["_id"]) if "_id" in doc else doc.get("id"),
        "record_key": doc.get("record_key") or doc.get("trace_id"),
        "trace_id": doc.get("trace_id"),
        "span_id": doc.get("span_id"),
        "parent_span_id": doc.get("parent_span_id"),
        "timestamp": doc.get("timestamp"),
        "method": doc.get("method"),
        "path": doc.get("path"),
        "route": doc.get("route"),
        "status_code": doc.get("status_code"),
        "total_duration": doc.get("total_duration"),
        "cpu_time": metrics.get("cpu_time"),
        "query_count": database.get("query_count"),
        "query_time": database.get("query_time"),
        "slow_query_count": database.get("slow_query_count")
        or len(database.get("slow_queries") or ()),
        "cache_hits": cache.get("cache_hits"),
        "cache_misses": cache.get("cache_misses"),
        "cache_time": cache.get("cache_time"),
        "peak_memory": memory.get("peak_memory"),
        "memory_delta": memory.get("memory_delta"),
        "response_size": (doc.get("response_info") or {}).get("response_size"),
        "app_version": doc.get("app_version"),
        "git_commit": (doc.get("version_info") or {}).get("git_commit"),
        "framework": environment.get("framework"),
        "python_version": environment.get("python_version"),
        "host": server.get("hostname"),
        "node_count": doc.get("node_count"),
        "error_type": (doc.get("error") or {}).get("type"),
        "statement_count": (
            len(statements.get("items") or ()) + int(statements.get("other_statements") or 0)
            if statements
            else None
        ),
    }
