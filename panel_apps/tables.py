"""How the loaders' frames are shown: Tabulator widgets with readable units.

Values are only formatted (seconds shown as ms, rates as percent), never computed.
"""

from __future__ import annotations

from typing import Any

import panel as pn

MS = {"type": "number", "decimalPlaces": 1}
PERCENT = {"type": "percentage"}
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
)


def to_pandas(frame: Any) -> Any:
    """A pandas frame from a loader's polars (or pandas) frame."""
    if hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if isinstance(frame, dict):
        import pandas as pd

        return pd.DataFrame(frame)
    return frame


def display_frame(frame: Any, columns: list[str] | None = None) -> Any:
    """A pandas copy for display: seconds as milliseconds (renamed ``... (ms)``), rates as %."""
    data = to_pandas(frame)
    if columns is not None:
        data = data[[c for c in columns if c in data.columns]]
    data = data.copy()
    renames = {}
    for name in data.columns:
        if name in SECONDS_COLUMNS:
            data[name] = (data[name] * 1000.0).round(2)
            renames[name] = f"{name} (ms)"
        elif name in RATE_COLUMNS:
            data[name] = (data[name] * 100.0).round(2)
        elif name == "throughput":
            data[name] = (data[name] * 60.0).round(3)
            renames[name] = "throughput (req/min)"
            renames[name] = f"{name} (%)"
    return data.rename(columns=renames)


def table(frame: Any, columns: list[str] | None = None, **options: Any) -> pn.widgets.Tabulator:
    """A read-only, sortable Tabulator of ``frame``."""
    data = display_frame(frame, columns)
    wide = {"route": "22%", "path": "16%", "trace_id": "22%", "function": "22%", "file": "18%"}
    defaults: dict[str, Any] = {
        "widths": {name: width for name, width in wide.items() if name in data.columns},
        "show_index": False,
        "disabled": True,
        "sizing_mode": "stretch_width",
        "layout": "fit_columns",
        "header_filters": False,
    }
    return pn.widgets.Tabulator(data, **{**defaults, **options})


def update_table(
    widget: pn.widgets.Tabulator, frame: Any, columns: list[str] | None = None
) -> None:
    widget.value = display_frame(frame, columns)
