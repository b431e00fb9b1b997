"""Versions: pick two app versions, see which endpoints regressed and the diff flame graph of one."""

from __future__ import annotations

from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.state import AppState
from panel_apps.tables import table
from pystrument_lab.errors import ParameterError
from pystrument_lab.markup import markdown_code, markdown_text
from pystrument_lab.treediff import function_changes
from pystrument_lab.widgets.flamegraph import flame_graph

COMPARISON_TABLE_COLUMNS = [
    "route", "method", "regression", "count_a", "count_b", "p50_change",
    "p95_a", "p95_b", "p95_change", "error_rate_a", "error_rate_b", "p_value",
]  # fmt: skip
CHANGE_TABLE_COLUMNS = [
    "function",
    "file",
    "line",
    "status",
    "self_a",
    "self_b",
    "self_delta",
    "share_delta",
]


class VersionsPage(Page):
    slug: ClassVar[str] = "versions"
    depends_on: ClassVar[tuple[str, ...]] = ("project", "version_a", "version_b", "route")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.version_a = pn.widgets.Select(label="Version A (before)", width=180)
        self.version_b = pn.widgets.Select(label="Version B (after)", width=180)
        self.route = pn.widgets.Select(label="Endpoint for the diff flame graph", width=320)
        self._filling = False
        self.version_a.param.watch(lambda e: self._chosen("version_a", e.new), "value")
        self.version_b.param.watch(lambda e: self._chosen("version_b", e.new), "value")
        self.route.param.watch(lambda e: self._chosen("route", e.new), "value")
        self.comparison: Any = None

    def _chosen(self, name: str, value: Any) -> None:
        if not self._filling and value is not None:
            setattr(self.state, name, value)

    def update(self) -> None:
        project = self.need_project()
        if project is None:
            self.body.objects = []
            return
        versions = self.lab.versions(project)["app_version"].to_list()
        if len(versions) < 2:
            self.body.objects = [
                pn.pane.Markdown(
                    f"## Versions of {markdown_text(project)}\nOnly {len(versions)} app version seen in the last 30 days. "
                    "Set `app_version` in the SDK config and deploy a second version to compare them."
                )
            ]
            return
        a = self.state.version_a if self.state.version_a in versions else versions[-2]
        b = self.state.version_b if self.state.version_b in versions else versions[-1]
        self.comparison = self.lab.compare_versions(project, a, b)
        routes = self.comparison["route"].to_list()
        regressed = self.comparison.filter(self.comparison["regression"])["route"].to_list()
        route = self.state.route if self.state.route in routes else (regressed or routes or [""])[0]
        self._filling = True
        try:
            self.version_a.param.update(options=versions, value=a)
            self.version_b.param.update(options=versions, value=b)
            self.route.param.update(options=routes, value=route or None)
        finally:
            self._filling = False
        shown_a, shown_b = markdown_text(a), markdown_text(b)
        verdict = (
            f"**{len(regressed)} endpoint(s) regressed from {shown_a} to {shown_b}:** "
            + ", ".join(markdown_code(r) for r in regressed)
            if regressed
            else f"No endpoint regressed from {shown_a} to {shown_b} "
            "(Mann-Whitney test on the duration histograms)."
        )
        listing = table(self.comparison, COMPARISON_TABLE_COLUMNS)
        self.body.objects = [
            pn.pane.Markdown(f"## Versions of {markdown_text(project)}"),
            pn.Row(self.version_a, self.version_b),
            pn.pane.Alert(verdict, alert_type="danger" if regressed else "success"),
            listing,
            self.route,
            self._diff(project, route, a, b),
        ]

    def _diff(self, project: str, route: str, a: str, b: str) -> pn.viewable.Viewable:
        if not route:
            return pn.pane.Markdown("")
        try:
            tree_a = self.lab.merged_tree(project, route, app_version=a)
            tree_b = self.lab.merged_tree(project, route, app_version=b)
        except ParameterError as exc:
            return pn.pane.Alert(markdown_text(exc.message), alert_type="info")
        changes = function_changes(tree_a, tree_b).head(15)
        return pn.Column(
            pn.pane.Markdown(
                f"### {markdown_text(route)}: {markdown_text(b)} against {markdown_text(a)}\n"
                f"Red: more self time per request in {markdown_text(b)}; blue: less."
            ),
            pn.pane.Bokeh(
                flame_graph(
                    tree_b, diff=tree_a, title=f"{route}, {b} (coloured by change from {a})"
                ),
                sizing_mode="stretch_width",
            ),
            pn.pane.Markdown("#### Functions that changed most (self time per request)"),
            table(changes, CHANGE_TABLE_COLUMNS),
            sizing_mode="stretch_width",
        )
