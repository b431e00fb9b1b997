"""``%pystrument records``, ``endpoints`` and ``trends``: the loaders as DataFrames.

Columns are documented once, in :mod:`pystrument_lab.loaders`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument, magic_arguments

from pystrument_lab.magics.args import parse, seconds

if TYPE_CHECKING:
    from pystrument_lab.magics.magic import Pystrument

__all__ = ["endpoints", "records", "trends"]


@magic_arguments(name="pystrument records")
@argument("project", help="project name or key")
@argument("--route", help="route template, e.g. /api/users/{id}")
@argument("--method", type=str.upper, help="HTTP method, e.g. GET")
@argument("--status", type=int, help="HTTP status code, e.g. 500")
@argument("--version", help="app version, e.g. 1.1")
@argument("--min-duration", type=seconds, help="only requests at least this slow (0.25 or 250ms)")
@argument("--range", help="only the last 1h, 24h, 7d... (default: all)")
@argument("--limit", type=int, help="at most this many rows (default: %%config record_limit)")
def records(magic: Pystrument, line: str) -> Any:
    """Sampled requests of a project, newest first, one row each."""
    args = parse(records, line)
    if args is None:
        return None
    table = magic.lab.records(
        args.project,
        time_range=args.range,
        route=args.route,
        method=args.method,
        status=args.status,
        app_version=args.version,
        min_duration=args.min_duration,
        limit=args.limit if args.limit is not None else magic.record_limit,
        engine=magic.table_engine(),
    )
    filtered = any(
        value is not None
        for value in (args.route, args.method, args.status, args.version, args.min_duration)
    )
    if not filtered:
        when = f"in the last {args.range}" if args.range else "at all"
        say_if_empty(magic, table, args.project, f"sampled requests {when}")
    return table


@magic_arguments(name="pystrument endpoints")
@argument("project", help="project name or key")
@argument("--range", help="time range, e.g. 1h, 24h, 7d (default: %%config time_range)")
@argument("--version", help="only this app version")
def endpoints(magic: Pystrument, line: str) -> Any:
    """Per route and method, from every request: count, errors, throughput, p50/p95/p99."""
    args = parse(endpoints, line)
    if args is None:
        return None
    time_range = args.range or magic.time_range
    table = magic.lab.endpoints(
        args.project,
        time_range=time_range,
        app_version=args.version,
        engine=magic.table_engine(),
    )
    if args.version is None:
        say_if_empty(magic, table, args.project, f"requests in the last {time_range}")
    return _slowest_first(table, magic.engine)


@magic_arguments(name="pystrument trends")
@argument("project", help="project name or key")
@argument("--range", help="time range, e.g. 1h, 24h, 7d (default: %%config time_range)")
@argument("--bucket", help="bucket width, e.g. 1m, 5m, 1h (default: chosen from the range)")
@argument("--route", help="only this route")
def trends(magic: Pystrument, line: str) -> Any:
    """Latency, throughput and errors per time bucket, oldest first."""
    args = parse(trends, line)
    if args is None:
        return None
    time_range = args.range or magic.time_range
    table = magic.lab.trends(
        args.project,
        time_range=time_range,
        bucket=args.bucket,
        route=args.route,
        engine=magic.table_engine(),
    )
    if args.route is None and not int(table["count"].sum()):
        say_if_empty(magic, table.head(0), args.project, f"requests in the last {time_range}")
    return table


def say_if_empty(magic: Pystrument, table: Any, project: str, what: str) -> None:
    """An empty table gets what to check (key, sampling, collector URL) on stderr."""
    if len(table):
        return
    from pystrument_lab.guidance import no_data
    from pystrument_lab.settings import get_settings

    store = magic.lab.store
    found = store.find_project(magic.lab.project_key(project))
    if found is None:
        return
    print(no_data(found, store, what, get_settings().collector_url), file=sys.stderr)


def _slowest_first(table: Any, engine: str) -> Any:
    """Endpoints by p95, slowest first: the order people read the table in."""
    if engine == "pandas":
        return table.sort_values("p95", ascending=False, na_position="last").reset_index(drop=True)
    return table.sort("p95", descending=True, nulls_last=True)
