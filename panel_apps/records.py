"""Records: the sampled requests in a filterable, sortable, paginated table; click one for its trace."""

from __future__ import annotations

from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.state import AppState
from panel_apps.tables import table, update_table
from pystrument_lab.markup import markdown_text

RECORD_TABLE_COLUMNS = [
    "timestamp", "method", "route", "path", "status_code", "total_duration", "cpu_time",
    "query_count", "app_version", "trace_id", "record_key",
]  # fmt: skip
SORTS = {
    "newest first": "-timestamp",
    "oldest first": "timestamp",
    "slowest first": "-total_duration",
    "fastest first": "total_duration",
}
ANY = "(any)"
#: Rows loaded per query; the table pages through them.
LIMIT = 2000


class RecordsPage(Page):
    slug: ClassVar[str] = "records"
    depends_on: ClassVar[tuple[str, ...]] = ("project", "time_range", "route")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.route = pn.widgets.Select(label="Route", options=[ANY], width=260)
        self.version = pn.widgets.Select(label="Version", options=[ANY], width=120)
        self.status = pn.widgets.IntInput(
            label="Status (0 = any)", value=0, start=0, end=599, width=130
        )
        self.min_ms = pn.widgets.FloatInput(
            label="Min duration (ms)", value=0.0, start=0.0, width=140
        )
        self.sort = pn.widgets.Select(label="Sort", options=list(SORTS), width=140)
        self._filling = False
        for widget in (self.version, self.status, self.min_ms, self.sort):
            widget.param.watch(self._filter_changed, "value")
        self.route.param.watch(self._route_chosen, "value")
        self.listing = table(
            {name: [] for name in RECORD_TABLE_COLUMNS}, pagination="local", page_size=20
        )
        self.listing.on_click(self._clicked)
        self.summary = pn.pane.Markdown()

    def _filter_changed(self, _: Any) -> None:
        if not self._filling:
            self.refresh()

    def _route_chosen(self, event: Any) -> None:
        if self._filling:
            return
        route = "" if event.new == ANY else event.new
        if route != self.state.route:
            self.state.route = route  # reloads through the state
        else:
            self.refresh()

    def filters(self) -> dict[str, Any]:
        """The records() keyword arguments the widgets stand for."""
        return {
            "time_range": self.state.time_range,
            "route": self.state.route or None,
            "app_version": None if self.version.value == ANY else self.version.value,
            "status": self.status.value or None,
            "min_duration": self.min_ms.value / 1000.0 if self.min_ms.value else None,
            "sort": SORTS[self.sort.value],
            "limit": LIMIT,
        }

    def load(self) -> Any:
        return self.lab.records(self.state.project, **self.filters())

    def update(self) -> None:
        project = self.need_project()
        if project is None:
            self.body.objects = []
            return
        routes = (
            self.lab.endpoints(project, time_range=self.state.time_range)["route"]
            .unique()
            .sort()
            .to_list()
        )
        if self.state.route and self.state.route not in routes:
            routes.append(self.state.route)
        versions = self.lab.versions(project)["app_version"].to_list()
        self._filling = True
        try:
            self.route.options = [ANY, *routes]
            self.route.value = self.state.route or ANY
            self.version.options = [ANY, *versions]
        finally:
            self._filling = False
        records = self.load()
        update_table(self.listing, records, RECORD_TABLE_COLUMNS)
        shown = records.height
        self.summary.object = (
            f"**{shown}** sampled requests"
            + (f" (the first {LIMIT})" if shown >= LIMIT else "")
            + ". Click a row to open its trace."
            if shown
            else "No sampled requests match these filters in this range."
        )
        self.body.objects = [
            pn.pane.Markdown(
                f"## Records of {markdown_text(project)}, {markdown_text(self.state.time_range)}"
            ),
            pn.Row(self.route, self.version, self.status, self.min_ms, self.sort),
            self.summary,
            self.listing,
        ]

    def _clicked(self, event: Any) -> None:
        self.state.open_trace(str(self.listing.value.iloc[event.row]["record_key"]))
