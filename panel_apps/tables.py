"""How the loaders' frames are shown: Tabulator widgets with one set of units.

Values are only converted for display, never computed: latencies in
milliseconds, throughput in requests per minute, rates in percent (the cell
shows the ``%``), times as UTC dates. The frame keeps the loaders' column
names (pages read rows back by them); the header texts, with their units,
are Tabulator ``titles``. A long trace id is shown shortened in a ``trace``
column, the full id stays in the (hidden) ``trace_id`` column.
"""

from __future__ import annotations

from typing import Any

import panel as pn

SECONDS_COLUMNS = (
    "total_duration", "cpu_time", "query_time", "cache_time", "avg", "min", "max", "p50", "p95", "p99",
    "p50_a", "p50_b", "p95_a", "p95_b", "self_a", "self_b", "self_delta",
)  # fmt: skip
RATE_COLUMNS = (
    "error_rate",
    "error_rate_a",
    "error_rate_b",
    "p50_change",
    "p95_change",
    "share_delta",
    "sampling_rate",
)
DATE_COLUMNS = ("timestamp", "created_at", "updated_at", "last_activity", "first_seen", "last_seen")
#: Header texts (the unit in brackets); a column not listed keeps its name.
TITLES: dict[str, str] = {
    "total_duration": "duration (ms)", "cpu_time": "CPU (ms)", "query_time": "SQL time (ms)",
    "cache_time": "cache time (ms)", "avg": "avg (ms)", "min": "min (ms)", "max": "max (ms)",
    "p50": "p50 (ms)", "p95": "p95 (ms)", "p99": "p99 (ms)",
    "p50_a": "p50 A (ms)", "p50_b": "p50 B (ms)", "p95_a": "p95 A (ms)", "p95_b": "p95 B (ms)",
    "self_a": "self A (ms)", "self_b": "self B (ms)", "self_delta": "self change (ms)",
    "error_rate": "error rate", "error_rate_a": "error rate A", "error_rate_b": "error rate B",
    "p50_change": "p50 change", "p95_change": "p95 change", "share_delta": "share change",
    "sampling_rate": "sampling", "throughput": "throughput (req/min)",
    "count": "requests", "count_a": "requests A", "count_b": "requests B", "p_value": "p-value",
    "status_code": "status", "query_count": "SQL queries", "app_version": "version",
    "timestamp": "time (UTC)", "created_at": "created (UTC)", "updated_at": "updated (UTC)",
    "last_activity": "last activity (UTC)", "first_seen": "first seen (UTC)",
    "last_seen": "last seen (UTC)", "trace": "trace id", "regression": "regressed",
    "error_type": "exception", "span_id": "span", "parent_span_id": "parent span",
}  # fmt: skip
PERCENT = {"type": "money", "symbol": "%", "symbolAfter": True, "precision": 2}
#: Characters of a trace id shown in a table (the full id opens the trace).
TRACE_CHARS = 12
#: Widths (share or px) of the columns whose texts are long; the others share the rest.
WIDE: dict[str, str | int] = {
    "route": "17%", "path": "14%", "function": "22%", "file": "18%", "name": "16%",
    "error_type": "22%", "exception": "40%",
    "regression": 96,  # one long word and the sort arrow
    # texts of a known length, shown whole
    "timestamp": 150, "created_at": 150, "trace": 118, "span_id": 150, "parent_span_id": 150,
}  # fmt: skip
#: A compact table, so a page's columns fit beside the sidebar at 1400 px.
COMPACT = """
.tabulator { font-size: 13px !important; }
.tabulator .tabulator-header .tabulator-col .tabulator-col-content { padding: 4px 6px !important; }
.tabulator-row .tabulator-cell[tabulator-field] { padding: 3px 6px !important; }
"""


def to_pandas(frame: Any) -> Any:
    """A pandas frame from a loader's polars (or pandas) frame."""
    if hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if isinstance(frame, dict):
        import pandas as pd

        return pd.DataFrame(frame)
    return frame


def short_id(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= TRACE_CHARS + 1 else text[:TRACE_CHARS] + "…"


def utc_text(values: Any) -> Any:
    """A datetime (or epoch milliseconds) column as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        times = pd.to_datetime(values, unit="ms", utc=True)
    else:
        times = pd.to_datetime(values, utc=True)
    return times.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("–")


def display_frame(frame: Any, columns: list[str] | None = None) -> Any:
    """A pandas copy for display: seconds as ms, rates as percent, req/s as req/min, UTC dates."""
    data = to_pandas(frame)
    if columns is not None:
        data = data[[c for c in columns if c in data.columns]]
    data = data.copy()
    for name in data.columns:
        if name in SECONDS_COLUMNS:
            data[name] = (data[name] * 1000.0).round(2)
        elif name in RATE_COLUMNS:
            data[name] = (data[name] * 100.0).round(2)
        elif name == "throughput":  # three significant digits: a quiet endpoint is not 0.0
            data[name] = (data[name] * 60.0).map(lambda v: float(f"{v:.3g}"))
        elif name in DATE_COLUMNS:
            data[name] = utc_text(data[name])
    if "trace_id" in data.columns:
        data.insert(list(data.columns).index("trace_id"), "trace", data["trace_id"].map(short_id))
    return data


def table_options(columns: list[str]) -> dict[str, Any]:
    """Titles, formatters and hidden columns for a table of ``columns``."""
    return {
        "titles": {name: TITLES[name] for name in columns if name in TITLES},
        "formatters": {name: PERCENT for name in columns if name in RATE_COLUMNS},
        "hidden_columns": [name for name in ("trace_id", "record_key") if name in columns],
    }


def table(frame: Any, columns: list[str] | None = None, **options: Any) -> pn.widgets.Tabulator:
    """A read-only, sortable Tabulator of ``frame`` whose columns fit the page's width."""
    data = display_frame(frame, columns)
    # Options for every column the page may show later (update_table keeps the widget).
    described = table_options(list(dict.fromkeys([*(columns or []), *data.columns])))
    described["formatters"].update(options.pop("formatters", {}))
    described["titles"].update(options.pop("titles", {}))
    defaults: dict[str, Any] = {
        "show_index": False,
        "disabled": True,
        "sizing_mode": "stretch_width",
        # The columns share the page's width; a header too long for its column wraps (never
        # cut), a cell's text too long for it is cut with its whole text in the tooltip.
        "layout": "fit_columns",
        "widths": {name: width for name, width in WIDE.items() if name in data.columns},
        "header_filters": False,
        "configuration": {"columnDefaults": {"headerWordWrap": True, "tooltip": True}},
        "stylesheets": [COMPACT],
        "css_classes": ["data-table"],
        **described,
    }
    return pn.widgets.Tabulator(data, **{**defaults, **options})


def update_table(
    widget: pn.widgets.Tabulator, frame: Any, columns: list[str] | None = None
) -> None:
    widget.value = display_frame(frame, columns)
