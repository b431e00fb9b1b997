"""Trace detail: one sampled request's request/response, metrics, call tree and flame graph.

``?page=trace&trace=<trace id>-<span id>`` (the record key) opens one request;
``?page=trace&trace=<trace id>`` opens the trace's request when it has one
and otherwise lists its requests (every project's) to choose from, so a trace
id copied from Jaeger, Tempo or Sentry, or the ``Server-Timing`` desc from
devtools, opens the right profile.

"Open in pyinstrument view" opens ``/pyinstrument?trace=<record key>``
(pyinstrument's own HTML renderer over the stored session, see
:func:`pyinstrument_view`); "speedscope" downloads the tree for
https://www.speedscope.app.
"""

from __future__ import annotations

import io
import json
from html import escape
from typing import Any, ClassVar
from urllib.parse import quote

import panel as pn

from panel_apps.page import Page
from panel_apps.state import AppState
from panel_apps.tables import table
from panel_apps.trace_panels import (
    PANEL_STYLE,
    allocations_html,
    exception_html,
    same_exception_html,
    sql_html,
)
from pystrument_lab.errors import ParameterError, PystrumentError
from pystrument_lab.loaders import Record
from pystrument_lab.markup import markdown_code, markdown_text
from pystrument_lab.treefocus import FocusedView
from pystrument_lab.widgets.flamegraph import flame_graph
from pystrument_lab.widgets.timefmt import format_ms, format_share

#: Columns of the list of a trace's requests (when a trace id names several).
TRACE_COLUMNS = [
    "timestamp", "method", "path", "status_code", "total_duration", "span_id",
    "parent_span_id", "app_version", "record_key",
]  # fmt: skip
#: Call-tree rows shown in the table; the flame graph shows every node.
TREE_ROWS = 400
DURATIONS = frozenset({"total duration", "CPU time", "SQL time", "cache time"})


def request_table(record: Record) -> dict[str, Any]:
    """What was asked and answered, as label -> value."""
    data = record.data
    request, response = data.get("request_info") or {}, data.get("response_info") or {}
    version, environment = data.get("version_info") or {}, data.get("environment") or {}
    return {
        "method": data.get("method"),
        "path": data.get("path"),
        "route": data.get("route"),
        "query": json.dumps(request.get("query_params") or {}),
        "user agent": request.get("user_agent"),
        "remote ip": request.get("remote_ip"),
        "status": data.get("status_code"),
        "content type": response.get("content_type"),
        "response size (bytes)": response.get("response_size"),
        "time (UTC)": f"{data['timestamp']:%Y-%m-%d %H:%M:%S}" if data.get("timestamp") else None,
        "app version": data.get("app_version"),
        "git commit": version.get("git_commit"),
        "framework": f"{environment.get('framework') or ''} {environment.get('framework_version') or ''}".strip(),
        "python": environment.get("python_version"),
        "host": (environment.get("server_info") or {}).get("hostname"),
    }


def metrics_table(record: Record) -> dict[str, Any]:
    """The request's measured metrics (CPU, SQL, cache, memory), as label -> value.

    The labels in :data:`DURATIONS` hold seconds (shown in ms).
    """
    metrics = record.data.get("performance_metrics") or {}
    database = metrics.get("database_metrics") or {}
    cache = metrics.get("cache_metrics") or {}
    memory = metrics.get("memory_usage") or {}
    return {
        "total duration": metrics.get("total_duration"),
        "CPU time": metrics.get("cpu_time"),
        "SQL queries": database.get("query_count"),
        "SQL time": database.get("query_time"),
        "slow queries": database.get("slow_query_count") or len(database.get("slow_queries") or ()),
        "cache hits": cache.get("cache_hits"),
        "cache misses": cache.get("cache_misses"),
        "cache time": cache.get("cache_time"),
        "peak memory (MB)": memory.get("peak_memory"),
        "memory delta (MB)": memory.get("memory_delta"),
    }


def _shown(label: str, value: Any) -> tuple[str, str]:
    if value is None:
        return label, "–"
    if label in DURATIONS:
        return label, format_ms(float(value))
    if isinstance(value, float):
        return label, f"{value:.3g}"
    return label, str(value)


def _pairs(values: dict[str, Any]) -> pn.pane.HTML:
    shown = [_shown(k, v) for k, v in values.items()]
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{escape(k)}</th><td>{escape(v)}</td></tr>"
        for k, v in shown
    )
    return pn.pane.HTML(f"<table class='pairs'>{rows}</table>")


def call_tree_rows(record: Record, *, show_all: bool = False) -> list[dict[str, Any]]:
    """The call tree in pre-order, indented, opened at the application root.

    Library frames inside calls are folded into the frame the application
    called (:class:`~pystrument_lab.treefocus.FocusedView`); ``show_all``
    lists every frame from the server's entry point.
    """
    tree = record.tree
    if tree is None:
        return []
    view = FocusedView(tree, show_all=show_all)
    total = tree.root.duration
    rows = []
    for node in view.rows()[:TREE_ROWS]:
        folded = view.folded[node.call_id]
        rows.append(
            {
                "function": "\u2003" * view.level[node.call_id] + node.function_name,
                "total": format_ms(tree.per_request(node.duration)),
                "self": format_ms(tree.per_request(node.self_time)),
                "share": format_share(node.duration / total if total else 0.0),
                "location": node.location,
                "folded": f"{folded} frame{'s' if folded != 1 else ''}" if folded else "",
            }
        )
    return rows


def focus_note(record: Record, *, show_all: bool) -> str:
    """Where the tree table opens and what it folds, as Markdown."""
    if record.tree is None:
        return ""
    view = FocusedView(record.tree, show_all=show_all)
    if show_all:
        return "Every frame, from the server's entry point."
    above, folded = view.hidden_above, sum(view.folded.values())
    if not above and not folded:
        return "Every frame is shown: this tree has no server, framework or library frames to fold."
    return (
        f"Opened at {markdown_code(view.top.function_name)}, the application's outermost frame: "
        f"{above} server and framework frame{'s' if above != 1 else ''} above it and "
        f"{folded} library frame{'s' if folded != 1 else ''} inside calls are folded."
    )


#: Other requests with the same exception listed on the trace page.
SAME_EXCEPTION_LISTED = 10


def diagnostics_panes(record: Record, lab: Any, project: str) -> list[pn.pane.HTML]:
    """The exception (with the other requests that raised it), SQL and allocation panels."""
    metrics = record.data.get("performance_metrics") or {}
    error = record.error
    same = None
    if error and error.get("type") and record.data.get("project_key"):
        others, total = lab.store.same_exception_records(
            record.data["project_key"],
            str(error["type"]),
            exclude=record.trace_id,
            limit=SAME_EXCEPTION_LISTED,
        )
        same = same_exception_html(str(error["type"]), others, total, project)
    fragments = [
        exception_html(error),
        same,
        sql_html(metrics.get("database_metrics")),
        allocations_html(metrics.get("memory_usage")),
    ]
    return [
        pn.pane.HTML(PANEL_STYLE + fragment, sizing_mode="stretch_width")
        for fragment in fragments
        if fragment is not None
    ]


class TracePage(Page):
    slug: ClassVar[str] = "trace"
    depends_on: ClassVar[tuple[str, ...]] = ("trace",)

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.record: Record | None = None

    def load(self) -> Record:
        return self.lab.record(self.state.trace)

    def update(self) -> None:
        import pandas as pd

        if not self.state.trace:
            self.body.objects = [
                pn.pane.Markdown("Open a request from the **Records** page to see its trace.")
            ]
            return
        try:
            self.record = record = self.load()
        except ParameterError as exc:
            if exc.status != 409:  # 409: the trace id names several requests
                raise
            self.body.objects = self._trace_requests(self.state.trace)
            return
        siblings = self.lab.trace(record.trace_id)
        data = record.data
        analyse = pn.widgets.Button(label="Analyse this request", color="primary")
        analyse.on_click(lambda _: self.state.request_analysis("record", record.record_key))
        copy = pn.widgets.Button(label="Copy trace id", color="light", css_classes=["copy-trace"])
        # The id travels as a value, never as code (it came from the monitored app).
        copy.js_on_click(args={"text": record.trace_id}, code="navigator.clipboard.writeText(text)")
        links: list[Any] = [analyse, copy]
        if record.session is not None:
            links.append(
                pn.pane.HTML(
                    f"<a class='pyinstrument-link' href='pyinstrument?trace={quote(record.record_key)}' "
                    "target='_blank'>Open in pyinstrument view ↗</a>",
                    margin=(12, 10),
                )
            )
        if record.tree is not None:
            links.append(
                pn.widgets.FileDownload(
                    callback=lambda: io.StringIO(json.dumps(record.speedscope())),
                    filename=f"{record.record_key}.speedscope.json",
                    label="Download for speedscope",
                    color="light",
                    embed=False,
                )
            )
        if data.get("project_key") and not self.state.project:
            project = self.lab.store.find_project(data["project_key"])
            if project is not None:
                self.state.project = project["name"]
        header = pn.pane.Markdown(
            f"## {markdown_text(data.get('method'))} {markdown_text(data.get('path'))} → "
            f"{markdown_text(data.get('status_code'))}\n"
            f"trace {markdown_code(record.trace_id)}"
            + (f" · span {markdown_code(data['span_id'])}" if data.get("span_id") else "")
            + (
                f" · parent span {markdown_code(data['parent_span_id'])}"
                if data.get("parent_span_id")
                else ""
            )
            + f" · {data.get('total_duration', 0) * 1000:.1f} ms"
        )
        info = pn.Row(
            pn.Column(pn.pane.Markdown("#### Request and response"), _pairs(request_table(record))),
            pn.Column(pn.pane.Markdown("#### Metrics"), _pairs(metrics_table(record))),
        )
        diagnostics = diagnostics_panes(record, self.lab, self.state.project)
        parts: list[Any] = [header, pn.Row(*links)]
        if siblings.height > 1:
            parts += self._trace_requests(record.trace_id, requests=siblings, opened=record)
        parts += [info, *diagnostics]
        if record.tree is None:
            parts.append(
                pn.pane.Alert("This request was stored without a call tree.", alert_type="info")
            )
        else:
            flame = pn.pane.Bokeh(
                flame_graph(record.tree, title="Flame graph"), sizing_mode="stretch_width"
            )
            parts.append(flame)
            parts += self._tree_table(record, flame)
        slow = ((data.get("performance_metrics") or {}).get("database_metrics") or {}).get(
            "slow_queries"
        )
        if slow:
            parts.append(pn.pane.Markdown("#### Slow queries"))
            parts.append(
                pn.widgets.Tabulator(
                    pd.DataFrame(slow), show_index=False, disabled=True, sizing_mode="stretch_width"
                )
            )
        self.body.objects = parts

    def _trace_requests(
        self, trace_id: str, *, requests: Any = None, opened: Record | None = None
    ) -> list[Any]:
        """The sampled requests of one trace (every project's), oldest first; a click
        opens one. ``opened``: the request shown above, when there is one."""
        if requests is None:
            requests = self.lab.trace(trace_id)
        listing = table(requests, TRACE_COLUMNS, css_classes=["data-table", "trace-requests"])

        def open_row(event: Any) -> None:
            self.state.open_trace(str(listing.value.iloc[event.row]["record_key"]))

        listing.on_click(open_row)
        count = f"{requests.height} sampled requests share this trace id"
        if opened is None:
            title = f"## Trace {markdown_code(trace_id)}\n{count}. Click one to open its profile."
        else:
            span = markdown_code(opened.data.get("span_id") or "–")
            title = f"#### Requests of this trace\n{count}; this is span {span}. Click another."
        return [pn.pane.Markdown(title), listing]

    def _tree_table(self, record: Record, flame: pn.pane.Bokeh) -> list[Any]:
        """The call-tree table, its note and the "show all frames" switch (of both views)."""
        show_all = pn.widgets.Checkbox(
            label="Show all frames (server, framework and library internals)",
            value=False,
            css_classes=["show-all-frames"],
        )
        note = pn.pane.Markdown(focus_note(record, show_all=False), css_classes=["tree-focus"])
        holder = pn.Column(_tree_table(record, show_all=False), sizing_mode="stretch_width")

        def switched(event: Any) -> None:
            # A new table, so its columns fit the new rows (fit_data sizes them once).
            holder.objects = [_tree_table(record, show_all=event.new)]
            note.object = focus_note(record, show_all=event.new)
            assert record.tree is not None
            flame.object = flame_graph(record.tree, title="Flame graph", show_all=event.new)

        show_all.param.watch(switched, "value")
        return [pn.pane.Markdown("#### Call tree"), show_all, note, holder]


def _tree_table(record: Record, *, show_all: bool) -> pn.widgets.Tabulator:
    import pandas as pd

    return pn.widgets.Tabulator(
        pd.DataFrame(call_tree_rows(record, show_all=show_all)),
        show_index=False,
        disabled=True,
        height=400,
        sizing_mode="stretch_width",
        layout="fit_data_stretch",
        css_classes=["call-tree"],
        # Search within the tree: a case-insensitive substring of the function's name.
        header_filters={
            "function": {"type": "input", "func": "like", "placeholder": "search functions"}
        },
    )


def pyinstrument_view() -> pn.viewable.Viewable:
    """The ``/pyinstrument?trace=...`` page: pyinstrument's HTML renderer in a full-page frame."""
    import pystrument_lab

    args = pn.state.session_args.get("trace") or [b""]
    trace = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    try:
        html = pystrument_lab.connect().record(trace).pyinstrument_html()
    except PystrumentError as exc:
        return pn.pane.Alert(markdown_text(exc.message), alert_type="warning")
    return pn.pane.HTML(
        f"<iframe srcdoc=\"{escape(html, quote=True)}\" style='width:100%;height:95vh;border:0'></iframe>",
        sizing_mode="stretch_both",
    )
