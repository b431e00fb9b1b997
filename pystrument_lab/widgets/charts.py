"""Bokeh trend charts over a ``lab.trends()`` frame, for notebooks and the dashboard.

Each function takes the frame (polars or pandas, columns as documented in
:mod:`pystrument_lab.loaders`) and draws what is in it; nothing is computed
here. Latencies are plotted in milliseconds, throughput in requests per
minute, error rates in percent (the dashboard's tables use the same units).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bokeh.plotting import figure as Figure

__all__ = [
    "error_rate_chart",
    "exceptions_chart",
    "latency_chart",
    "sparkline",
    "throughput_chart",
    "trend_columns",
]

LATENCY_COLOURS = {"p50": "#2a9d8f", "p95": "#e9c46a", "p99": "#e76f51"}
THROUGHPUT_COLOUR = "#8ecae6"
ERROR_COLOUR = "#d62828"
#: One colour per exception type, most frequent first; the rest share the last.
EXCEPTION_COLOURS = ("#d62828", "#f77f00", "#6a4c93", "#1982c4", "#8ac926", "#8d99ae")


def trend_columns(trends: Any) -> dict[str, list[Any]]:
    """The columns of a trends frame (polars, pandas, mapping of lists, list of rows) as lists."""
    if isinstance(trends, list):
        names = list(trends[0]) if trends else ["bucket_start", "count"]
        return {name: [row.get(name) for row in trends] for name in names}
    if isinstance(trends, Mapping):
        return {name: list(values) for name, values in trends.items()}
    if hasattr(trends, "to_dict") and hasattr(trends, "iter_rows"):  # polars
        return {name: list(values) for name, values in trends.to_dict(as_series=False).items()}
    if hasattr(trends, "to_dict"):  # pandas
        return {name: list(values) for name, values in trends.to_dict("list").items()}
    raise TypeError(f"expected a trends DataFrame, got {type(trends).__name__}")


def _scaled(values: Sequence[Any], factor: float) -> list[float]:
    return [float("nan") if value is None else float(value) * factor for value in values]


def _bucket_width_ms(times: Sequence[Any]) -> float:
    if len(times) < 2:
        return 60_000.0
    return float((times[1] - times[0]).total_seconds() * 1000 * 0.8)


def _time_figure(
    title: str, y_label: str, times: Sequence[Any], *, height: int, width: int
) -> Figure:
    """A datetime figure spanning every bucket, so empty buckets show as gaps, not a shorter axis."""
    from bokeh.models import Range1d
    from bokeh.plotting import figure

    extra: dict[str, Any] = {}
    if times:
        step = times[1] - times[0] if len(times) > 1 else None
        extra["x_range"] = Range1d(times[0], times[-1] + step if step is not None else times[-1])
    plot = figure(
        title=title,
        x_axis_type="datetime",
        **extra,
        height=height,
        width=width,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,reset,save",
    )
    plot.yaxis.axis_label = y_label
    plot.toolbar.logo = None
    return plot


def latency_chart(
    trends: Any, *, title: str = "Latency", height: int = 260, width: int = 700
) -> Figure:
    """p50, p95 and p99 per bucket, as lines (ms); empty buckets leave gaps."""
    from bokeh.models import ColumnDataSource, HoverTool

    columns = trend_columns(trends)
    source = ColumnDataSource(
        {
            "time": columns["bucket_start"],
            **{name: _scaled(columns[name], 1000.0) for name in LATENCY_COLOURS},
            "count": columns["count"],
        }
    )
    plot = _time_figure(title, "ms", columns["bucket_start"], height=height, width=width)
    lines: list[Any] = [
        plot.line("time", name, source=source, color=colour, line_width=2, legend_label=name)
        for name, colour in LATENCY_COLOURS.items()
    ]
    for name, colour in LATENCY_COLOURS.items():  # markers: a lone bucket between gaps still shows
        plot.scatter("time", name, source=source, color=colour, size=4)
    plot.add_tools(
        HoverTool(
            renderers=lines[:1],
            mode="vline",
            formatters={"@time": "datetime"},
            tooltips=[
                ("time", "@time{%F %H:%M}"),
                ("p50", "@p50{0.0} ms"),
                ("p95", "@p95{0.0} ms"),
                ("p99", "@p99{0.0} ms"),
                ("requests", "@count"),
            ],
        )
    )
    plot.legend.location = "top_left"
    plot.legend.orientation = "horizontal"
    return plot


def throughput_chart(
    trends: Any, *, title: str = "Throughput", height: int = 200, width: int = 700
) -> Figure:
    """Requests per minute per bucket, as bars."""
    from bokeh.models import ColumnDataSource, HoverTool

    columns = trend_columns(trends)
    source = ColumnDataSource(
        {
            "time": columns["bucket_start"],
            "throughput": _scaled(columns["throughput"], 60.0),
            "count": columns["count"],
        }
    )
    plot = _time_figure(title, "requests/min", columns["bucket_start"], height=height, width=width)
    bars = plot.vbar(
        x="time", top="throughput", width=_bucket_width_ms(columns["bucket_start"]),
        source=source, color=THROUGHPUT_COLOUR,
    )  # fmt: skip
    plot.add_tools(
        HoverTool(
            renderers=[bars],
            formatters={"@time": "datetime"},
            tooltips=[
                ("time", "@time{%F %H:%M}"),
                ("req/min", "@throughput{0.0}"),
                ("requests", "@count"),
            ],
        )
    )
    plot.y_range.start = 0  # type: ignore[attr-defined]
    return plot


def error_rate_chart(
    trends: Any, *, title: str = "Error rate", height: int = 200, width: int = 700
) -> Figure:
    """Share of requests that failed (5xx or unhandled exception) per bucket, in percent."""
    from bokeh.models import ColumnDataSource, HoverTool

    columns = trend_columns(trends)
    source = ColumnDataSource(
        {
            "time": columns["bucket_start"],
            "error_rate": _scaled(columns["error_rate"], 100.0),
            "errors": columns["errors"],
        }
    )
    plot = _time_figure(title, "% of requests", columns["bucket_start"], height=height, width=width)
    line = plot.line("time", "error_rate", source=source, color=ERROR_COLOUR, line_width=2)
    plot.add_tools(
        HoverTool(
            renderers=[line],
            mode="vline",
            formatters={"@time": "datetime"},
            tooltips=[
                ("time", "@time{%F %H:%M}"),
                ("error rate", "@error_rate{0.00} %"),
                ("errors", "@errors"),
            ],
        )
    )
    plot.y_range.start = 0  # type: ignore[attr-defined]
    return plot


def exceptions_chart(
    exception_trends: Any,
    *,
    title: str = "Exceptions by type",
    height: int = 220,
    width: int = 700,
) -> Figure:
    """Exceptions per bucket stacked by type (a ``lab.exception_trends()`` frame).

    The type names come from the monitored app: they reach the browser as
    data (legend text, tooltip fields), never as markup.
    """
    from bokeh.models import ColumnDataSource, HoverTool

    columns = trend_columns(exception_trends)
    by_type: dict[str, dict[Any, int]] = {}
    for bucket, kind, count in zip(
        columns.get("bucket_start", []), columns.get("exception", []), columns.get("count", []),
        strict=True,
    ):  # fmt: skip
        by_type.setdefault(str(kind), {})[bucket] = int(count)
    times = sorted({bucket for counts in by_type.values() for bucket in counts})
    plot = _time_figure(title, "exceptions", times, height=height, width=width)
    data: dict[str, list[Any]] = {"time": times}
    stackers = []
    for index, (kind, counts) in enumerate(by_type.items()):
        stackers.append(f"type_{index}")
        data[f"type_{index}"] = [counts.get(time, 0) for time in times]
        data[f"name_{index}"] = [kind] * len(times)
    source = ColumnDataSource(data)
    colours = [EXCEPTION_COLOURS[min(i, len(EXCEPTION_COLOURS) - 1)] for i in range(len(stackers))]
    bars = plot.vbar_stack(
        stackers,
        x="time",
        width=_bucket_width_ms(times),
        source=source,
        color=colours,
        legend_label=list(by_type),
    )
    for index, renderer in enumerate(bars):
        plot.add_tools(
            HoverTool(
                renderers=[renderer],
                formatters={"@time": "datetime"},
                tooltips=[
                    ("time", "@time{%F %H:%M}"),
                    ("exception", f"@name_{index}"),
                    ("count", f"@type_{index}"),
                ],
            )
        )
    plot.y_range.start = 0  # type: ignore[attr-defined]
    if stackers:
        plot.legend.location = "top_left"
        plot.legend.label_text_font_size = "11px"
    return plot


def sparkline(
    trends: Any,
    column: str = "count",
    *,
    height: int = 50,
    width: int = 220,
    colour: str = "#457b9d",
) -> Figure:
    """A bare line of one trend column: no axes, no tools, for a table cell or a card."""
    from bokeh.plotting import figure

    columns = trend_columns(trends)
    values = [0.0 if value is None else float(value) for value in columns[column]]
    plot = figure(
        height=height, width=width, x_axis_type="datetime", toolbar_location=None, tools="",
        min_border=2, outline_line_color=None,
    )  # fmt: skip
    plot.line(columns["bucket_start"], values, color=colour, line_width=1.5)
    plot.axis.visible = False
    plot.grid.visible = False
    return plot
