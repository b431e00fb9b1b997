"""Endpoints: per route p50/p95/p99, throughput, error rate and counts; trends; the merged call tree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import panel as pn

from panel_apps.hotpath import hot_path_html
from panel_apps.page import Page
from panel_apps.snippets import no_data
from panel_apps.state import AppState
from panel_apps.tables import table, update_table
from pystrument_lab.errors import ParameterError
from pystrument_lab.markup import markdown_text
from pystrument_lab.widgets.charts import (
    error_rate_chart,
    exceptions_chart,
    latency_chart,
    throughput_chart,
)
from pystrument_lab.widgets.flamegraph import flame_graph

ENDPOINT_TABLE_COLUMNS = [
    "route",
    "method",
    "count",
    "throughput",
    "error_rate",
    "p50",
    "p95",
    "p99",
    "max",
]


#: Columns of the route's slowest and failed requests.
REQUEST_COLUMNS = [
    "timestamp", "total_duration", "status_code", "error_type", "query_count", "app_version",
    "trace_id", "record_key",
]  # fmt: skip
#: Requests in each list; the failed ones are looked for among the newest RECENT.
LISTED = 10
RECENT = 500


class EndpointsPage(Page):
    slug: ClassVar[str] = "endpoints"
    depends_on: ClassVar[tuple[str, ...]] = ("project", "time_range", "route")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.endpoints: Any = None
        self.listing = table(
            {"route": []}, ENDPOINT_TABLE_COLUMNS, pagination="local", page_size=15, selectable=1
        )
        self.listing.on_click(self._clicked)
        self.detail = pn.Column(sizing_mode="stretch_width")

    def load(self) -> dict[str, Any]:
        """The endpoints table and the trends of the chosen route (or of the whole project)."""
        project, time_range = self.state.project, self.state.time_range
        return {
            "endpoints": self.lab.endpoints(project, time_range=time_range),
            "trends": self.lab.trends(
                project, time_range=time_range, route=self.state.route or None
            ),
        }

    def update(self) -> None:
        project = self.need_project()
        if project is None:
            self.body.objects = []
            return
        data = self.load()
        self.endpoints = data["endpoints"]
        if self.endpoints.height == 0 and self.state.route == "":
            stored = self.lab.store.project_by_name(project) or self.lab.store.find_project(project)
            self.body.objects = [
                pn.pane.Markdown(
                    f"No requests in the {markdown_text(self.state.time_range)} range. Try a longer range, or:"
                ),
                no_data(stored),
            ]
            return
        update_table(self.listing, self.endpoints, ENDPOINT_TABLE_COLUMNS)
        scope = self.state.route or "all endpoints"
        charts = pn.Column(
            pn.pane.Bokeh(
                latency_chart(data["trends"], title=f"Latency, {scope}"),
                sizing_mode="stretch_width",
            ),
            pn.Row(
                pn.pane.Bokeh(throughput_chart(data["trends"]), sizing_mode="stretch_width"),
                pn.pane.Bokeh(error_rate_chart(data["trends"]), sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )
        self.body.objects = [
            pn.pane.Markdown(
                f"## Endpoints of {markdown_text(project)}, {markdown_text(self.state.time_range)}\nClick a route to see its trend and call tree."
            ),
            self.listing,
            charts,
            self.detail,
        ]
        self._fill_detail()

    def _opener(self, listing: pn.widgets.Tabulator) -> Callable[[Any], None]:
        """A click handler opening the trace of the clicked row of ``listing``."""

        def open_row(event: Any) -> None:
            self.state.open_trace(str(listing.value.iloc[event.row]["record_key"]))

        return open_row

    def _clicked(self, event: Any) -> None:
        self.state.route = str(self.listing.value.iloc[event.row]["route"])

    def _fill_detail(self) -> None:
        route = self.state.route
        if not route:
            self.detail.objects = []
            return
        records_button = pn.widgets.Button(label=f"Records of {route}", color="primary")
        records_button.on_click(lambda _: setattr(self.state, "page", "records"))
        analyse_button = pn.widgets.Button(label="Analyse this endpoint")
        analyse_button.on_click(lambda _: self.state.request_analysis("endpoint", route))
        try:
            tree = self.lab.merged_tree(self.state.project, route, time_range=self.state.time_range)
        except ParameterError as exc:
            graph: pn.viewable.Viewable = pn.pane.Alert(
                markdown_text(exc.message), alert_type="info"
            )
        else:
            graph = pn.Column(
                pn.pane.Bokeh(
                    flame_graph(
                        tree,
                        title=f"{route}: typical request, {tree.n_trees} sampled requests merged",
                    ),
                    sizing_mode="stretch_width",
                ),
                pn.pane.Markdown(
                    "#### Merged call tree, opened on the hot path\n"
                    "Per request, from the application's outermost frame; the heaviest chain "
                    "is open, click any row to open it."
                ),
                pn.pane.HTML(hot_path_html(tree), sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            )
        self.detail.objects = [
            pn.pane.Markdown(f"### {markdown_text(route)}"),
            pn.Row(records_button, analyse_button),
            graph,
            *self._requests_lists(route),
        ]

    def _requests_lists(self, route: str) -> list[Any]:
        """The route's exceptions by type, its slowest and its failed sampled requests."""
        project, time_range = self.state.project, self.state.time_range
        parts: list[Any] = []
        exceptions = self.lab.exceptions(project, time_range=time_range, route=route)
        if exceptions.height:
            over_time = self.lab.exception_trends(project, time_range=time_range, route=route)
            parts += [
                pn.pane.Markdown("#### Exceptions, every request counted"),
                table(exceptions, ["exception", "method", "count"], css_classes=["exceptions"]),
                pn.pane.Bokeh(
                    exceptions_chart(over_time, title=f"Exceptions by type, {route}"),
                    sizing_mode="stretch_width",
                ),
            ]
        newest = self.lab.records(project, time_range=time_range, route=route, limit=RECENT)
        failed = newest.filter(
            (newest["status_code"] >= 500) | newest["error_type"].is_not_null()
        ).head(LISTED)
        slowest = self.lab.records(
            project, time_range=time_range, route=route, sort="-total_duration", limit=LISTED
        )
        for title, frame, name in (
            ("Slowest sampled requests", slowest, "slowest"),
            (f"Failed sampled requests (of the newest {RECENT})", failed, "failed"),
        ):
            if not frame.height:
                continue
            listing = table(frame, REQUEST_COLUMNS, css_classes=[name])
            listing.on_click(self._opener(listing))
            parts += [pn.pane.Markdown(f"#### {title}; click one for its trace"), listing]
        return parts
