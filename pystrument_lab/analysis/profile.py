"""What an analysis looks at: one record, or an endpoint's records merged.

:class:`Profile` is the pre-processed input shared by the rule engine and the
LLM analyser: mean request metrics, the call tree (a merged tree for an
endpoint), and per-function statistics. Pure Python; no store access.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pystrument_lab.analysis.evidence import (
    AllocationSite,
    Statement,
    allocations_of,
    statements_of,
)
from pystrument_lab.calltree import OTHER, CallTree
from pystrument_lab.treemerge import merge_trees
from pystrument_lab.treestats import FunctionStats, function_stats, hot_paths

__all__ = ["Profile", "from_record", "from_records"]


@dataclass
class Profile:
    """Mean metrics per request plus the (merged) call tree of ``requests`` requests."""

    project_key: str
    route: str
    method: str
    requests: int
    total_duration: float
    cpu_time: float | None
    query_count: float
    query_time: float
    slow_queries: list[dict[str, Any]]
    peak_memory: float | None
    memory_delta: float | None
    cache_hits: float
    cache_misses: float
    error_share: float
    trace_ids: list[str]
    app_version: str = ""
    framework: str = ""
    tree: CallTree | None = None
    functions: list[FunctionStats] = field(default_factory=list)
    #: Seconds the request waited for a CPU (another process held it): not its own waiting.
    run_queue_time: float | None = None
    #: Voluntary context switches per request: how often the thread blocked.
    context_switches: float | None = None
    statements: list[Statement] = field(default_factory=list)
    allocations: list[AllocationSite] = field(default_factory=list)
    #: The exceptions of failed requests: type → how many of the analysed requests.
    exceptions: dict[str, int] = field(default_factory=dict)

    @property
    def cpu_share(self) -> float | None:
        """CPU time over wall time; None when the SDK did not measure CPU time."""
        if self.cpu_time is None or self.total_duration <= 0:
            return None
        return min(self.cpu_time / self.total_duration, 1.0)

    def app_functions(self) -> list[FunctionStats]:
        """Application functions (not the pruned-time node), by self time descending."""
        return [f for f in self.functions if f.is_application and f.function != OTHER]

    def summary(self) -> dict[str, Any]:
        """The ``analysis_input.performance_summary`` of SPEC §3."""
        return {
            "route": self.route,
            "method": self.method,
            "requests": self.requests,
            "total_duration": _round(self.total_duration),
            "cpu_time": _round(self.cpu_time),
            "cpu_share": _round(self.cpu_share),
            "query_count": _round(self.query_count),
            "query_time": _round(self.query_time),
            "slow_query_count": len(self.slow_queries),
            "peak_memory": _round(self.peak_memory),
            "memory_delta": _round(self.memory_delta),
            "cache_hits": _round(self.cache_hits),
            "cache_misses": _round(self.cache_misses),
            "error_share": _round(self.error_share),
        }

    def slow_functions(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``analysis_input.slow_functions`` of SPEC §3: heaviest functions by self time."""
        rows = [f for f in self.functions if f.function != OTHER][:n]
        return [
            {
                "function": f.function,
                "file_path": f.file,
                "line_number": f.line,
                "is_application": f.is_application,
                "self_time": _round(f.self_per_request),
                "total_time": _round(f.total_per_request),
                "share": _round(f.share),
                "total_share": _round(f.total_share),
                "calls": f.calls,
                "occurrences": f.occurrences,
            }
            for f in rows
        ]

    def hot_paths(self, n: int = 5) -> list[dict[str, Any]]:
        if self.tree is None:
            return []
        return [
            {"path": str(path), "time": _round(path.per_request), "share": _round(path.share)}
            for path in hot_paths(self.tree, n)
        ]

    def context_info(self) -> dict[str, Any]:
        return {
            "project_key": self.project_key,
            "app_version": self.app_version,
            "framework": self.framework,
            "trace_ids": self.trace_ids[:20],
        }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _metrics(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record.get("performance_metrics") or {}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def _optional_median(values: Sequence[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def _optional_mean(values: Sequence[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return _mean(present) if present else None


def from_record(
    record: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]] | None = None
) -> Profile:
    """The profile of one record; ``nodes`` default to its ``function_calls``."""
    if nodes is None:
        nodes = record.get("function_calls") or []
    return from_records([record], [nodes] if nodes else [])


def from_records(
    records: Sequence[Mapping[str, Any]], trees: Sequence[Sequence[Mapping[str, Any]]]
) -> Profile:
    """The profile of many records of one endpoint: mean metrics and the merged tree."""
    if not records:
        raise ValueError("an analysis needs at least one record")
    first = records[0]
    request = first.get("request_info") or {}
    metrics = [_metrics(r) for r in records]
    database = [m.get("database_metrics") or {} for m in metrics]
    memory = [m.get("memory_usage") or {} for m in metrics]
    cache = [m.get("cache_metrics") or {} for m in metrics]
    slow: list[dict[str, Any]] = []
    for db in database:
        slow.extend(dict(q) for q in db.get("slow_queries") or [])
    slow.sort(key=lambda q: -float(q.get("duration") or 0.0))
    statuses = [
        int((r.get("response_info") or {}).get("status_code") or r.get("status_code") or 0)
        for r in records
    ]
    tree: CallTree | None = None
    usable = [t for t in trees if t]
    if len(usable) == 1:
        tree = CallTree.from_nodes(usable[0])
    elif usable:
        tree = merge_trees(usable)
    version = first.get("version_info") or {}
    environment = first.get("environment") or {}
    return Profile(
        project_key=str(first.get("project_key") or ""),
        route=str(
            request.get("route")
            or first.get("route")
            or request.get("path")
            or first.get("path")
            or ""
        ),
        method=str(request.get("method") or first.get("method") or ""),
        requests=len(records),
        total_duration=_mean([float(m.get("total_duration") or 0.0) for m in metrics]),
        cpu_time=_optional_mean([m.get("cpu_time") for m in metrics]),
        query_count=_mean([float(db.get("query_count") or 0) for db in database]),
        query_time=_mean([float(db.get("query_time") or 0.0) for db in database]),
        slow_queries=slow[:20],
        # Memory of the typical request (the median): one request loading a
        # library or a certificate bundle does not make every request heavy.
        peak_memory=_optional_median([mem.get("peak_memory") for mem in memory]),
        memory_delta=_optional_median([mem.get("memory_delta") for mem in memory]),
        cache_hits=_mean([float(c.get("cache_hits") or 0) for c in cache]),
        cache_misses=_mean([float(c.get("cache_misses") or 0) for c in cache]),
        error_share=sum(1 for s in statuses if s >= 500) / len(records),
        trace_ids=[str(r.get("trace_id")) for r in records if r.get("trace_id")],
        app_version=str(version.get("app_version") or first.get("app_version") or ""),
        framework=str(environment.get("framework") or ""),
        tree=tree,
        functions=function_stats(tree) if tree is not None else [],
        run_queue_time=_optional_mean([m.get("run_queue_time") for m in metrics]),
        context_switches=_optional_mean([m.get("context_switches") for m in metrics]),
        statements=statements_of(records),
        allocations=allocations_of(records),
        exceptions=_exceptions(records),
    )


def _exceptions(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        error = record.get("error") or {}
        kind = error.get("type") if isinstance(error, Mapping) else None
        if kind:
            counts[str(kind)] = counts.get(str(kind), 0) + 1
    return counts
