"""Trends and per-endpoint statistics from the pre-aggregated metric stream.

Pure Python over ``endpoint_metrics`` documents (see the store), so the
collector can use it without the dataframe stack; the loaders wrap the same
rows in DataFrames. Percentiles come from merged log-scale histograms and are
within ``histogram.RELATIVE_ERROR`` (4.4 %) of a true duration at that rank.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from performance_monitor.core import histogram

from pystrument_lab.errors import ParameterError
from pystrument_lab.store import (
    METRIC_RETENTION,
    RESOLUTIONS,
    Store,
    as_utc,
    floor_time,
    utcnow,
)

PERCENTILES = (50.0, 95.0, 99.0)
_RANGE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MAX_SPAN = timedelta(days=400)


def parse_duration(text: str) -> timedelta:
    """``"15m"``, ``"1h"``, ``"24h"``, ``"7d"``, ``"2w"`` → timedelta."""
    match = _RANGE.match(text or "")
    if not match:
        raise ParameterError(
            f"time range {text!r} is not understood; use a number and a unit m/h/d/w, e.g. 1h, 24h, 7d, 30d"
        )
    digits = match.group(1).lstrip("0") or "0"
    # More digits than any span up to 400d needs would overflow timedelta.
    span = timedelta(**{_UNITS[match.group(2)]: int(digits)}) if len(digits) <= 7 else None
    if span is None or not timedelta(0) < span <= _MAX_SPAN:
        raise ParameterError(f"time range {text!r} must be between 1m and 400d")
    return span


#: Up to this span a window reads documents of this resolution, so a query
#: reads at most about 200 documents per endpoint, however busy it is.
_RESOLUTION_LIMITS = (
    (timedelta(hours=3), "1m"),
    (timedelta(days=1, hours=12), "10m"),
)
_BUCKET_WIDTHS = tuple(
    timedelta(minutes=minutes) for minutes in (1, 5, 10, 30, 60, 360, 1440, 10080)
)


def resolution_for(span: timedelta, age: timedelta = timedelta(0)) -> str:
    """The finest resolution for a window of ``span`` that starts ``age`` ago.

    A window reaching back beyond a resolution's retention
    (``store.METRIC_RETENTION``) reads the next coarser one.
    """
    for limit, resolution in _RESOLUTION_LIMITS:
        if span <= limit and age <= METRIC_RETENTION[resolution]:
            return resolution
    return "1h"


def default_bucket(span: timedelta, resolution: str = "1m") -> timedelta:
    """A bucket width that gives a readable chart (at most 170 points) and is a
    whole number of the resolution's steps."""
    step = RESOLUTIONS[resolution]
    widths = [width for width in _BUCKET_WIDTHS if width >= step and width % step == timedelta(0)]
    for width in widths:
        if span / width <= 170:
            return width
    return widths[-1]


#: The instants a window may start or end at: the store holds nothing older,
#: and date arithmetic on them cannot overflow.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def bounded_instant(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC, refused with a :class:`ParameterError` outside EARLIEST..LATEST."""
    try:
        moment = as_utc(moment)
    except OverflowError:
        moment = datetime.min.replace(tzinfo=timezone.utc)
    if not EARLIEST <= moment <= LATEST:
        raise ParameterError(
            f"{name} {moment.isoformat()} is out of range; use a time between "
            f"{EARLIEST.year} and {LATEST.year}"
        )
    return moment


@dataclass(frozen=True)
class Window:
    """A time window and how to bucket it."""

    since: datetime
    until: datetime
    bucket: timedelta
    resolution: str

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


def window(
    time_range: str | None = "24h",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: str | timedelta | None = None,
) -> Window:
    """Resolve a time range (or explicit since/until) into a :class:`Window`."""
    until = bounded_instant(until, "until") if until is not None else utcnow()
    if since is None:
        since = until - parse_duration(time_range or "24h")
    since = bounded_instant(since, "since")
    if since >= until:
        raise ParameterError("the start of the time range must come before its end")
    span = until - since
    resolution = resolution_for(span, utcnow() - since)
    step = RESOLUTIONS[resolution]
    width = parse_duration(bucket) if isinstance(bucket, str) else bucket
    if width is None:
        width = default_bucket(span, resolution)
    elif width % step:
        # A bucket must hold whole documents: round it up to the resolution.
        width = (width // step + 1) * step
    # Widen the window to whole resolution steps so no partial document is cut off.
    return Window(floor_time(since, step), until, width, resolution)


class _Accumulator:
    __slots__ = ("count", "errors", "duration_sum", "duration_min", "duration_max", "histogram")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.duration_sum = 0.0
        self.duration_min = float("inf")
        self.duration_max = 0.0
        self.histogram: dict[int, int] = {}

    def add(self, doc: Mapping[str, Any]) -> None:
        self.count += int(doc.get("count", 0))
        self.errors += int(doc.get("errors", 0))
        self.duration_sum += float(doc.get("duration_sum", 0.0))
        if doc.get("duration_min") is not None:
            self.duration_min = min(self.duration_min, float(doc["duration_min"]))
        if doc.get("duration_max") is not None:
            self.duration_max = max(self.duration_max, float(doc["duration_max"]))
        for key, value in (doc.get("histogram") or {}).items():
            index = int(key)
            self.histogram[index] = self.histogram.get(index, 0) + int(value)

    def stats(self, seconds: float) -> dict[str, Any]:
        empty = self.count == 0
        out: dict[str, Any] = {
            "count": self.count,
            "errors": self.errors,
            "error_rate": (self.errors / self.count) if self.count else 0.0,
            "throughput": self.count / seconds if seconds > 0 else 0.0,
            "avg": None if empty else self.duration_sum / self.count,
            "min": None if empty else self.duration_min,
            "max": None if empty else self.duration_max,
        }
        for q in PERCENTILES:
            out[f"p{int(q)}"] = histogram.percentile(
                self.histogram,
                q,
                lowest=None if empty else self.duration_min,
                highest=None if empty else self.duration_max,
            )
        return out


def trend_buckets(docs: Iterable[Mapping[str, Any]], span: Window) -> list[dict[str, Any]]:
    """One row per bucket of the window, empty buckets included, oldest first."""
    start = floor_time(span.since, span.bucket)
    accumulators: dict[datetime, _Accumulator] = {}
    cursor = start
    while cursor < span.until:
        accumulators[cursor] = _Accumulator()
        cursor += span.bucket
    for doc in docs:
        key = floor_time(doc["bucket_start"], span.bucket)
        if key in accumulators:
            accumulators[key].add(doc)
    seconds = span.bucket.total_seconds()
    return [{"bucket_start": key, **acc.stats(seconds)} for key, acc in accumulators.items()]


def exception_name(key: str) -> str:
    """An exception type as stored in a metric document's ``exceptions`` (dots escaped) read back."""
    return key.replace("\uff0e", ".")


def exception_buckets(docs: Iterable[Mapping[str, Any]], span: Window) -> list[dict[str, Any]]:
    """Exceptions per type and bucket, every request counted: one row per type and bucket.

    Types seen in the window, most frequent first; each has every bucket of
    the window (zero where it did not occur), oldest first.
    """
    start = floor_time(span.since, span.bucket)
    buckets = []
    cursor = start
    while cursor < span.until:
        buckets.append(cursor)
        cursor += span.bucket
    counts: dict[tuple[datetime, str], int] = {}
    totals: dict[str, int] = {}
    for doc in docs:
        key = floor_time(doc["bucket_start"], span.bucket)
        if key < start:
            continue
        for kind, count in (doc.get("exceptions") or {}).items():
            name = exception_name(kind)
            counts[(key, name)] = counts.get((key, name), 0) + int(count)
            totals[name] = totals.get(name, 0) + int(count)
    order = sorted(totals, key=lambda name: (-totals[name], name))
    return [
        {"bucket_start": bucket, "exception": name, "count": counts.get((bucket, name), 0)}
        for name in order
        for bucket in buckets
    ]


def endpoint_rows(
    docs: Iterable[Mapping[str, Any]], seconds: float, *, by: tuple[str, ...] = ("route", "method")
) -> list[dict[str, Any]]:
    """One row per endpoint (or any grouping of metric fields), busiest first."""
    groups: dict[tuple[Any, ...], _Accumulator] = {}
    for doc in docs:
        key = tuple(doc.get(field) for field in by)
        groups.setdefault(key, _Accumulator()).add(doc)
    rows = [dict(zip(by, key, strict=True)) | acc.stats(seconds) for key, acc in groups.items()]
    rows.sort(key=lambda row: (-row["count"], *(str(row[field]) for field in by)))
    return rows


def summary(docs: Iterable[Mapping[str, Any]], seconds: float) -> dict[str, Any]:
    acc = _Accumulator()
    for doc in docs:
        acc.add(doc)
    return acc.stats(seconds)


def project_trends(
    store: Store,
    project_key: str,
    span: Window,
    *,
    route: str | None = None,
    method: str | None = None,
    app_version: str | None = None,
) -> dict[str, Any]:
    """Summary, buckets and per-endpoint rows for a project over a window."""
    docs = store.metric_docs(
        project_key,
        since=span.since,
        until=span.until,
        resolution=span.resolution,
        route=route,
        method=method,
        app_version=app_version,
    )
    return {
        "since": span.since,
        "until": span.until,
        "bucket_seconds": int(span.bucket.total_seconds()),
        "resolution": span.resolution,
        "percentile_relative_error": round(histogram.RELATIVE_ERROR, 4),
        "summary": summary(docs, span.seconds),
        "buckets": trend_buckets(docs, span),
        "endpoints": endpoint_rows(docs, span.seconds),
    }


def project_overview(store: Store, project_key: str, span: Window) -> dict[str, Any]:
    """A project's summary and buckets over a window from its roll-ups (every route at
    once): what the overview shows of each project, at a cost that does not grow with
    its routes."""
    docs = store.project_metric_docs(
        project_key, since=span.since, until=span.until, resolution=span.resolution
    )
    return {"summary": summary(docs, span.seconds), "buckets": trend_buckets(docs, span)}
