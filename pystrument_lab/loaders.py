"""Dataframe loaders: the workbench's view of the store.

``lab = pystrument_lab.connect()`` gives a :class:`Lab`; every loader takes the
project (name or key) first and its options keyword-only, and returns a polars
DataFrame, or pandas with ``engine="pandas"``. Empty results are empty frames
with the full schema. Datetimes are timezone-aware UTC.

Columns, documented once:

records (one row per sampled request)
    ``id, record_key, trace_id, span_id, parent_span_id, timestamp, method,
    path, route, status_code,
    total_duration, cpu_time, query_count, query_time, slow_query_count,
    cache_hits, cache_misses, cache_time, peak_memory, memory_delta,
    response_size, app_version, git_commit, framework, python_version, host,
    node_count, error_type, statement_count`` (durations in s, memory in MB,
    sizes in bytes; ``error_type`` null unless the request failed with an
    exception, ``statement_count`` the distinct SQL statements stored, null
    for records without them). ``record_key`` (``<trace id>-<span id>``, or the
    trace id for records without a span id) names one request; requests of one
    distributed trace share ``trace_id``.
endpoints (one row per route and method, from the metric stream of ALL requests)
    ``route, method, count, errors, error_rate, throughput`` (req/s over the
    range) ``, avg, min, max, p50, p95, p99`` (s; percentiles within 4.4 %).
trends (one row per time bucket)
    ``bucket_start, count, errors, error_rate, throughput, avg, min, max, p50, p95, p99``.
exceptions (one row per route, method and exception type, from the metric stream)
    ``route, method, exception, count``, most frequent first.
exception trends (one row per exception type and time bucket, from the metric stream)
    ``bucket_start, exception, count``: the types most frequent first, each over every bucket.
versions
    ``app_version, count, errors, error_rate, p50, p95, p99, first_seen, last_seen``.
projects
    ``project_key, name, framework, status, sampling_rate, enabled,
    auto_analysis, created_at, last_activity``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from pystrument_lab import guidance
from pystrument_lab import store as store_module
from pystrument_lab import trends as trends_module
from pystrument_lab.calltree import CallTree
from pystrument_lab.errors import ParameterError, ProjectNotFound
from pystrument_lab.store import Store
from pystrument_lab.treemerge import merge_trees

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from typing_extensions import Unpack

    from pystrument_lab.treediff import TreeDiff

from pystrument_lab.frames import (
    ENDPOINT_COLUMNS,
    EXCEPTION_COLUMNS,
    EXCEPTION_TREND_COLUMNS,
    PROJECT_COLUMNS,
    RECORD_COLUMNS,
    TREND_COLUMNS,
    VERSION_COLUMNS,
    Engine,
    record_row,
    to_frame,
)

__all__ = ["Engine", "Lab", "Record", "connect"]


# Keyword options of the loaders, so each loader's return type follows ``engine``
# (overloads: polars by default, pandas with engine="pandas").
class WindowOptions(TypedDict, total=False):
    time_range: str | None
    since: datetime | None
    until: datetime | None


class EndpointOptions(WindowOptions, total=False):
    app_version: str | None


class ExceptionOptions(EndpointOptions, total=False):
    route: str | None
    method: str | None


class TrendOptions(ExceptionOptions, total=False):
    bucket: str | None


class RecordOptions(ExceptionOptions, total=False):
    status: int | None
    min_duration: float | None
    limit: int | None
    sort: str


class VersionOptions(TypedDict, total=False):
    time_range: str | None


class ComparisonOptions(VersionOptions, total=False):
    alpha: float
    min_change: float


class FunctionChangeOptions(TypedDict, total=False):
    limit: int | None


@dataclass
class Record:
    """One sampled request: its stored fields, call tree and pyinstrument session."""

    data: dict[str, Any]
    tree: CallTree | None
    session: bytes | None

    @property
    def trace_id(self) -> str:
        return str(self.data["trace_id"])

    @property
    def record_key(self) -> str:
        """The request's identity: ``<trace id>-<span id>`` (the trace id without a span id)."""
        return str(self.data.get("record_key") or self.trace_id)

    @property
    def error(self) -> dict[str, Any] | None:
        """``{type, message, traceback, frames_omitted}`` if the request failed with an exception."""
        return self.data.get("error") or None

    @property
    def sql_statements(self) -> list[dict[str, Any]]:
        """The distinct statements: ``{statement, count, total_duration, max_duration, call_site}``."""
        database = (self.data.get("performance_metrics") or {}).get("database_metrics") or {}
        return list((database.get("statements") or {}).get("items") or [])

    @property
    def allocations(self) -> list[dict[str, Any]]:
        """Top allocating application lines: ``{function, file, line, size, count}``."""
        memory = (self.data.get("performance_metrics") or {}).get("memory_usage") or {}
        return list(memory.get("allocations") or [])

    def pyinstrument_html(self) -> str:
        """pyinstrument's own interactive HTML view of the stored session."""
        from pystrument_lab.treeformats import pyinstrument_html

        if self.session is None:
            raise ParameterError(
                f"record {self.record_key} was stored without a pyinstrument session"
            )
        return pyinstrument_html(self.session)

    def speedscope(self) -> dict[str, Any]:
        from pystrument_lab.treeformats import to_speedscope

        if self.tree is None:
            raise ParameterError(f"record {self.record_key} has no call tree")
        return to_speedscope(self.tree, name=f"{self.data.get('method')} {self.data.get('path')}")


class Lab:
    """Loaders over one store. Create with :func:`pystrument_lab.connect`."""

    def __init__(self, store: Store, notice: str | None = None) -> None:
        self.store = store
        #: What opening the store did that the user should know (it started an empty one).
        self.notice = notice

    def __repr__(self) -> str:
        return f"Lab({self.store.url!r}, database={self.store.database_name!r})"

    # -- projects ---------------------------------------------------------

    def project_key(self, project: str | Mapping[str, Any]) -> str:
        """The key of a project given by name, key or project dict."""
        if isinstance(project, Mapping):
            return str(project["project_key"])
        found = self.store.find_project(project) or self.store.project_by_name(project)
        if found is None:
            raise ProjectNotFound(guidance.missing_project(project, self.store))
        return str(found["project_key"])

    @overload
    def projects(self, *, engine: Literal["polars"] = ...) -> pl.DataFrame: ...
    @overload
    def projects(self, *, engine: Literal["pandas"]) -> pd.DataFrame: ...
    @overload
    def projects(self, *, engine: Engine) -> pl.DataFrame | pd.DataFrame: ...
    def projects(self, *, engine: Engine = "polars") -> pl.DataFrame | pd.DataFrame:
        items, _ = self.store.list_projects(page=1, size=100_000)
        rows = []
        for item in items:
            config = item.get("config") or {}
            rows.append(
                {
                    **item,
                    "sampling_rate": config.get("sampling_rate"),
                    "enabled": config.get("enabled"),
                    "auto_analysis": config.get("auto_analysis"),
                }
            )
        return to_frame(rows, PROJECT_COLUMNS, engine)

    # -- sampled records --------------------------------------------------

    @overload
    def records(
        self, project: str, *, engine: Literal["polars"] = ..., **options: Unpack[RecordOptions]
    ) -> pl.DataFrame: ...
    @overload
    def records(
        self, project: str, *, engine: Literal["pandas"], **options: Unpack[RecordOptions]
    ) -> pd.DataFrame: ...
    @overload
    def records(
        self, project: str, *, engine: Engine, **options: Unpack[RecordOptions]
    ) -> pl.DataFrame | pd.DataFrame: ...
    def records(
        self,
        project: str,
        *,
        time_range: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = None,
        method: str | None = None,
        status: int | None = None,
        app_version: str | None = None,
        min_duration: float | None = None,
        limit: int | None = 10_000,
        sort: str = "-timestamp",
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """Sampled requests, newest first (columns: RECORD_COLUMNS)."""
        since, until = _range(time_range, since, until)
        docs, _ = self.store.find_records(
            self.project_key(project),
            route=route,
            method=method,
            status_code=status,
            app_version=app_version,
            since=since,
            until=until,
            min_duration=min_duration,
            sort=sort,
            limit=limit,
            with_total=False,
        )
        return to_frame([record_row(doc) for doc in docs], RECORD_COLUMNS, engine)

    @overload
    def trace(
        self, trace_id: str, project: str | None = ..., *, engine: Literal["polars"] = ...
    ) -> pl.DataFrame: ...
    @overload
    def trace(
        self, trace_id: str, project: str | None = ..., *, engine: Literal["pandas"]
    ) -> pd.DataFrame: ...
    def trace(
        self, trace_id: str, project: str | None = None, *, engine: Engine = "polars"
    ) -> pl.DataFrame | pd.DataFrame:
        """Every sampled request of one distributed trace, oldest first (columns:
        RECORD_COLUMNS), in one project or, by default, all of them."""
        key = self.project_key(project) if project is not None else None
        docs = self.store.trace_records(trace_id, key)
        return to_frame([record_row(doc) for doc in docs], RECORD_COLUMNS, engine)

    def record(self, ref: str, project: str | None = None) -> Record:
        """One record with its call tree and pyinstrument session.

        ``ref`` is the record's ``record_key``, or a trace id only one record
        has; a trace with several raises a 409 :class:`ParameterError` whose
        ``data["records"]`` names each (see :meth:`trace`).
        """
        key = self.project_key(project) if project is not None else None
        data = self.store.resolve_record(ref, key)
        tree_doc = self.store.get_call_tree(data["project_key"], data["record_key"])
        tree = (
            CallTree.from_nodes(
                tree_doc["nodes"], application_root=tree_doc.get("application_root")
            )
            if tree_doc and tree_doc.get("nodes")
            else None
        )
        return Record(data, tree, tree_doc.get("session") if tree_doc else None)

    # -- metric stream ----------------------------------------------------

    @overload
    def endpoints(
        self, project: str, *, engine: Literal["polars"] = ..., **options: Unpack[EndpointOptions]
    ) -> pl.DataFrame: ...
    @overload
    def endpoints(
        self, project: str, *, engine: Literal["pandas"], **options: Unpack[EndpointOptions]
    ) -> pd.DataFrame: ...
    @overload
    def endpoints(
        self, project: str, *, engine: Engine, **options: Unpack[EndpointOptions]
    ) -> pl.DataFrame | pd.DataFrame: ...
    def endpoints(
        self,
        project: str,
        *,
        time_range: str | None = "24h",
        since: datetime | None = None,
        until: datetime | None = None,
        app_version: str | None = None,
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """Per route and method: counts, throughput, error rate, p50/p95/p99."""
        span = trends_module.window(time_range, since=since, until=until)
        docs = self._metric_docs(project, span, app_version=app_version)
        return to_frame(trends_module.endpoint_rows(docs, span.seconds), ENDPOINT_COLUMNS, engine)

    @overload
    def trends(
        self, project: str, *, engine: Literal["polars"] = ..., **options: Unpack[TrendOptions]
    ) -> pl.DataFrame: ...
    @overload
    def trends(
        self, project: str, *, engine: Literal["pandas"], **options: Unpack[TrendOptions]
    ) -> pd.DataFrame: ...
    @overload
    def trends(
        self, project: str, *, engine: Engine, **options: Unpack[TrendOptions]
    ) -> pl.DataFrame | pd.DataFrame: ...
    def trends(
        self,
        project: str,
        *,
        time_range: str | None = "24h",
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: str | None = None,
        route: str | None = None,
        method: str | None = None,
        app_version: str | None = None,
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """One row per time bucket, empty buckets included, oldest first."""
        span = trends_module.window(time_range, since=since, until=until, bucket=bucket)
        docs = self._metric_docs(project, span, route=route, method=method, app_version=app_version)
        return to_frame(trends_module.trend_buckets(docs, span), TREND_COLUMNS, engine)

    @overload
    def exceptions(
        self, project: str, *, engine: Literal["polars"] = ..., **options: Unpack[ExceptionOptions]
    ) -> pl.DataFrame: ...
    @overload
    def exceptions(
        self, project: str, *, engine: Literal["pandas"], **options: Unpack[ExceptionOptions]
    ) -> pd.DataFrame: ...
    @overload
    def exceptions(
        self, project: str, *, engine: Engine, **options: Unpack[ExceptionOptions]
    ) -> pl.DataFrame | pd.DataFrame: ...
    def exceptions(
        self,
        project: str,
        *,
        time_range: str | None = "24h",
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = None,
        method: str | None = None,
        app_version: str | None = None,
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """Exceptions per route, method and type, counted for every request (not sampled)."""
        span = trends_module.window(time_range, since=since, until=until)
        docs = self._metric_docs(project, span, route=route, method=method, app_version=app_version)
        totals: dict[tuple[str, str, str], int] = {}
        for doc in docs:
            for kind, count in (doc.get("exceptions") or {}).items():
                key = (doc["route"], doc["method"], trends_module.exception_name(kind))
                totals[key] = totals.get(key, 0) + int(count)
        rows = [
            {"route": r, "method": m, "exception": k, "count": n}
            for (r, m, k), n in sorted(totals.items(), key=lambda item: -item[1])
        ]
        return to_frame(rows, EXCEPTION_COLUMNS, engine)

    def exception_trends(
        self,
        project: str,
        *,
        time_range: str | None = "24h",
        bucket: str | None = None,
        route: str | None = None,
        method: str | None = None,
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """Exceptions per type and time bucket, counted for every request (not sampled)."""
        span = trends_module.window(time_range, bucket=bucket)
        docs = self._metric_docs(project, span, route=route, method=method)
        rows = trends_module.exception_buckets(docs, span)
        return to_frame(rows, EXCEPTION_TREND_COLUMNS, engine)

    @overload
    def versions(
        self, project: str, *, engine: Literal["polars"] = ..., **options: Unpack[VersionOptions]
    ) -> pl.DataFrame: ...
    @overload
    def versions(
        self, project: str, *, engine: Literal["pandas"], **options: Unpack[VersionOptions]
    ) -> pd.DataFrame: ...
    @overload
    def versions(
        self, project: str, *, engine: Engine, **options: Unpack[VersionOptions]
    ) -> pl.DataFrame | pd.DataFrame: ...
    def versions(
        self, project: str, *, time_range: str | None = "30d", engine: Engine = "polars"
    ) -> pl.DataFrame | pd.DataFrame:
        """Per app version: requests, errors and latency, first and last seen."""
        span = trends_module.window(time_range)
        docs = self._metric_docs(project, span)
        rows = trends_module.endpoint_rows(docs, span.seconds, by=("app_version",))
        seen: dict[str, list[datetime]] = {}
        for doc in docs:
            seen.setdefault(doc.get("app_version") or "", []).append(doc["bucket_start"])
        for row in rows:
            times = seen.get(row["app_version"] or "", [])
            row["first_seen"], row["last_seen"] = (
                (min(times), max(times)) if times else (None, None)
            )
        rows.sort(
            key=lambda row: row["first_seen"] or datetime.max.replace(tzinfo=span.until.tzinfo)
        )
        return to_frame(rows, VERSION_COLUMNS, engine)

    def _metric_docs(
        self, project: str, span: trends_module.Window, **filters: Any
    ) -> list[dict[str, Any]]:
        return self.store.metric_docs(
            self.project_key(project),
            since=span.since,
            until=span.until,
            resolution=span.resolution,
            **filters,
        )

    # -- call trees -------------------------------------------------------

    def trees(
        self,
        project: str,
        route: str,
        *,
        app_version: str | None = None,
        time_range: str | None = None,
        limit: int | None = 1000,
    ) -> list[CallTree]:
        """The call trees of an endpoint's sampled requests, newest first."""
        return [
            CallTree.from_nodes(nodes)
            for nodes in self._tree_nodes(project, route, app_version, time_range, limit)
        ]

    def merged_tree(
        self,
        project: str,
        route: str,
        *,
        app_version: str | None = None,
        time_range: str | None = None,
        limit: int | None = 1000,
    ) -> CallTree:
        """The endpoint's typical profile: its sampled trees merged into one."""
        # Merging the stored node lists directly skips building one tree per
        # record, which costs ten times the merge itself.
        nodes = self._tree_nodes(project, route, app_version, time_range, limit)
        if not nodes:
            raise ParameterError(
                f"no call trees for {route!r}"
                + (f" in version {app_version!r}" if app_version else "")
                + "; is the endpoint sampled (sampling_rate) and the route spelled as in lab.endpoints()?"
            )
        return merge_trees(nodes)

    def _tree_nodes(
        self,
        project: str,
        route: str,
        app_version: str | None,
        time_range: str | None,
        limit: int | None,
    ) -> list[list[dict[str, Any]]]:
        since, until = _range(time_range, None, None)
        docs = self.store.iter_call_trees(
            self.project_key(project),
            route=route,
            app_version=app_version,
            since=since,
            until=until,
            limit=limit,
        )
        return [doc["nodes"] for doc in docs if doc.get("nodes")]

    def version_diff(
        self, project: str, route: str, a: str, b: str, *, limit: int | None = 1000
    ) -> TreeDiff:
        """Diff of an endpoint's merged trees in versions ``a`` and ``b`` (per request)."""
        from pystrument_lab.treediff import diff_trees

        return diff_trees(
            self.merged_tree(project, route, app_version=a, limit=limit),
            self.merged_tree(project, route, app_version=b, limit=limit),
        )

    @overload
    def function_changes(
        self,
        project: str,
        route: str,
        a: str,
        b: str,
        *,
        engine: Literal["polars"] = ...,
        **options: Unpack[FunctionChangeOptions],
    ) -> pl.DataFrame: ...
    @overload
    def function_changes(
        self,
        project: str,
        route: str,
        a: str,
        b: str,
        *,
        engine: Literal["pandas"],
        **options: Unpack[FunctionChangeOptions],
    ) -> pd.DataFrame: ...
    @overload
    def function_changes(
        self,
        project: str,
        route: str,
        a: str,
        b: str,
        *,
        engine: Engine,
        **options: Unpack[FunctionChangeOptions],
    ) -> pl.DataFrame | pd.DataFrame: ...
    def function_changes(
        self,
        project: str,
        route: str,
        a: str,
        b: str,
        *,
        limit: int | None = 1000,
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """Functions ranked by how much slower they got from ``a`` to ``b`` (self time per request)."""
        from pystrument_lab.treediff import function_changes

        return function_changes(
            self.merged_tree(project, route, app_version=a, limit=limit),
            self.merged_tree(project, route, app_version=b, limit=limit),
            engine=engine,
        )

    @overload
    def compare_versions(
        self,
        project: str,
        a: str,
        b: str,
        *,
        engine: Literal["polars"] = ...,
        **options: Unpack[ComparisonOptions],
    ) -> pl.DataFrame: ...
    @overload
    def compare_versions(
        self,
        project: str,
        a: str,
        b: str,
        *,
        engine: Literal["pandas"],
        **options: Unpack[ComparisonOptions],
    ) -> pd.DataFrame: ...
    @overload
    def compare_versions(
        self, project: str, a: str, b: str, *, engine: Engine, **options: Unpack[ComparisonOptions]
    ) -> pl.DataFrame | pd.DataFrame: ...
    def compare_versions(
        self,
        project: str,
        a: str,
        b: str,
        *,
        time_range: str | None = "30d",
        alpha: float = 0.01,
        min_change: float = 0.10,
        engine: Engine = "polars",
    ) -> pl.DataFrame | pd.DataFrame:
        """Per-endpoint latency change from version ``a`` to ``b``, with regressions flagged."""
        from pystrument_lab.compare import COMPARISON_COLUMNS, compare_endpoint_docs

        span = trends_module.window(time_range)
        docs_a = self._metric_docs(project, span, app_version=a)
        docs_b = self._metric_docs(project, span, app_version=b)
        missing = [version for version, docs in ((a, docs_a), (b, docs_b)) if not docs]
        if missing:
            seen = sorted({str(doc.get("app_version")) for doc in self._metric_docs(project, span)})
            message = guidance.missing_versions(project, missing, seen, time_range or "range")
            warnings.warn(message, guidance.NoDataWarning, stacklevel=2)
        rows = compare_endpoint_docs(docs_a, docs_b, alpha=alpha, min_change=min_change)
        return to_frame(rows, COMPARISON_COLUMNS, engine)


def _range(
    time_range: str | None, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    if time_range is None:
        return since, until
    span: timedelta = trends_module.parse_duration(time_range)
    end = until or store_module.utcnow()
    return end - span, until


def open_lab(url: str | None = None, *, database: str | None = None) -> Lab:
    """A :class:`Lab` on the store; its ``notice`` says if the embedded store had to start."""
    from pystrument_lab.settings import get_settings

    settings = get_settings()
    if url is not None or settings.mongodb_url:
        return Lab(store_module.connect(url, database=database))
    from pystrument_lab.embedded import EmbeddedServer

    server = EmbeddedServer(settings.home, port=settings.store_port)
    if server.state() is not None:
        return Lab(store_module.connect(database=database))
    lab = Lab(store_module.connect(server.ensure_running(), database=database))
    _, projects = lab.store.list_projects(page=1, size=1)
    lab.notice = guidance.started_store(lab.store.url, server.data_dir, settings.home, projects)
    return lab


def connect(url: str | None = None, *, database: str | None = None) -> Lab:
    """A :class:`Lab` on the configured store (the embedded one when no URL is set).

    Starting the embedded store (it was not running) is said with a
    :class:`~pystrument_lab.guidance.StoreNotice` warning naming its data directory.
    """
    lab = open_lab(url, database=database)
    if lab.notice:
        warnings.warn(
            lab.notice, guidance.StoreNotice, stacklevel=3
        )  # pystrument_lab.connect's caller
    return lab
