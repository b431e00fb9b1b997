"""The dashboard: a template with a sidebar (pages, project, time range) over the pages.

``create_app()`` builds one session's app; serve the function, not an object,
so every browser session has its own state: ``pystrument dashboard``, or
``panel serve panel_apps/app.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import panel as pn

from panel_apps.analysis import AnalysisPage
from panel_apps.endpoints import EndpointsPage
from panel_apps.overview import OverviewPage
from panel_apps.page import Page
from panel_apps.projects import ProjectsPage
from panel_apps.records import RecordsPage
from panel_apps.reports import ReportsPage
from panel_apps.state import PAGES, TIME_RANGES, AppState, fitted_range, sync_location
from panel_apps.trace import TracePage
from panel_apps.versions import VersionsPage
from pystrument_lab.errors import PystrumentError

PAGE_CLASSES: dict[str, type[Page]] = {
    "overview": OverviewPage,
    "projects": ProjectsPage,
    "endpoints": EndpointsPage,
    "records": RecordsPage,
    "trace": TracePage,
    "versions": VersionsPage,
    "analysis": AnalysisPage,
    "reports": ReportsPage,
}
NO_PROJECT = "(choose a project)"


class Dashboard(pn.viewable.Viewer):
    """The pages, the sidebar controls and the state they share."""

    def __init__(self, lab: Any = None, **params: Any) -> None:
        super().__init__(**params)
        if lab is None:
            import pystrument_lab

            lab = pystrument_lab.connect()
        self.state = AppState(lab)
        sync_location(self.state)
        # A range in the URL (or chosen in the sidebar) is the user's; otherwise it follows the data.
        self._range_chosen = "range" in (pn.state.session_args or {})
        if not self._range_chosen:
            self.fit_time_range()
            if pn.state.location is not None:
                # The URL can only change once the page is in the browser.
                pn.state.onload(self._write_range)
        self.pages: dict[str, Page] = {
            slug: cls(state=self.state) for slug, cls in PAGE_CLASSES.items()
        }
        self.nav = pn.widgets.RadioButtonGroup(
            options={title: slug for slug, title in PAGES.items()},
            value=self.state.page,
            orientation="vertical",
            color="primary",
            variant="outline",
            sizing_mode="stretch_width",
            css_classes=["page-nav"],
        )
        self.project = pn.widgets.Select(label="Project", sizing_mode="stretch_width")
        self.time_range = pn.widgets.Select(
            label="Time range", options={label: key for key, label in TIME_RANGES.items()},
            value=self.state.time_range, sizing_mode="stretch_width",
        )  # fmt: skip
        self.main = pn.Column(sizing_mode="stretch_width")
        self.nav.param.watch(lambda e: setattr(self.state, "page", e.new), "value")
        self.time_range.param.watch(self._range_picked, "value")
        self.project.param.watch(self._project_chosen, "value")
        self.state.param.watch(self._page_changed, "page")
        self.state.param.watch(self._project_changed, "project")
        self.state.param.watch(lambda e: self._sync_controls(), ["project", "time_range"])
        self._sync_controls()
        self._show(self.state.page)

    def fit_time_range(self) -> None:
        """Set the range that fits the chosen project's data (every project's on the overview)."""
        if self.state.project:
            projects = [self.state.project]
        else:
            listed, _ = self.state.lab.store.list_projects(page=1, size=100)
            projects = [p["name"] for p in listed if p.get("status") != "archived"]
        with contextlib.suppress(PystrumentError):  # an unknown project: its page says so
            self.state.time_range = fitted_range(self.state.lab, projects)

    def _write_range(self) -> None:
        if pn.state.location is not None:
            pn.state.location.update_query(range=self.state.time_range)  # type: ignore[arg-type]

    def _range_picked(self, event: Any) -> None:
        if event.new != self.state.time_range:
            self._range_chosen = True
            self.state.time_range = event.new

    def _project_chosen(self, event: Any) -> None:
        if event.new and event.new != NO_PROJECT and event.new != self.state.project:
            self.state.param.update(project=event.new, route="", trace="")

    def _project_changed(self, _: Any) -> None:
        if not self._range_chosen:
            self.fit_time_range()

    def _sync_controls(self) -> None:
        names = [
            p["name"]
            for p in self.state.lab.store.list_projects(page=1, size=1000)[0]
            if p.get("status") != "archived"
        ]
        if self.state.project and self.state.project not in names:
            names.append(self.state.project)
        self.project.options = [NO_PROJECT, *names]
        self.project.value = self.state.project or NO_PROJECT
        self.time_range.value = self.state.time_range
        self.nav.value = self.state.page

    def _page_changed(self, event: Any) -> None:
        self.nav.value = event.new
        self._show(event.new)

    def _show(self, slug: str) -> None:
        page = self.pages[slug]
        self.main.objects = [page]
        page.activate()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.main

    def template(self) -> pn.template.BaseTemplate:
        # Bootstrap: its resources ship with Panel, so nothing is fetched from the internet.
        return pn.template.BootstrapTemplate(
            title="Pystrument",
            sidebar=[
                self.nav,
                self.project,
                self.time_range,
                pn.pane.Markdown(
                    "The address bar holds the page, project, route, trace and range: copy it to share this view."
                ),
            ],
            main=[self.main],
            header_background="#1d3557",
            sidebar_width=260,
        )


def create_app() -> pn.template.BaseTemplate:
    """One session's dashboard (the function ``pystrument dashboard`` serves)."""
    pn.extension("tabulator", "codeeditor", notifications=False, loading_indicator=True)
    return Dashboard().template()


if pn.state.served:
    create_app().servable()
