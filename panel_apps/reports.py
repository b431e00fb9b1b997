"""Reports: the archive of scheduled report runs (executed notebooks), and "run now".

Reports are papermill runs of the notebooks in ``notebooks/reports/``,
indexed in the ``reports`` collection by :mod:`pystrument_lab.reports`. When
that module is not installed the page says what it will hold.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.state import AppState

REPORT_COLUMNS = [
    "created_at",
    "name",
    "status",
    "project",
    "time_range",
    "html_path",
    "notebook_path",
    "error",
]
ABOUT = (
    "Reports are notebooks from `notebooks/reports/` run on a schedule (or now) with papermill "
    "for a project and time range: latency and error trends, regressions between versions and the "
    "slowest endpoints, saved as an executed notebook and HTML. Each run is listed here with its status "
    "and links to the files."
)


def reports_available() -> bool:
    return importlib.util.find_spec("pystrument_lab.reports") is not None


class ReportsPage(Page):
    slug: ClassVar[str] = "reports"
    depends_on: ClassVar[tuple[str, ...]] = ("project", "time_range")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.listing = pn.widgets.Tabulator(
            show_index=False,
            disabled=True,
            sizing_mode="stretch_width",
            height=320,
            layout="fit_data_stretch",
        )
        self.run_button = pn.widgets.Button(name="Run report now", button_type="primary")
        self.run_button.on_click(lambda _: self.run_now())
        self.progress = pn.indicators.Progress(active=True, visible=False, width=240)
        self.status = pn.pane.Markdown("")
        self._poll: Any = None
        self._thread: threading.Thread | None = None
        self._outcome: dict[str, Any] = {}

    def load(self) -> list[dict[str, Any]]:
        """The report documents of the chosen project (all projects when none is chosen), newest first."""
        query: dict[str, Any] = {}
        if self.state.project:
            project = self.lab.store.project_by_name(
                self.state.project
            ) or self.lab.store.find_project(self.state.project)
            if project is not None:
                query = {"project_key": project["project_key"]}
        documents = self.lab.store.reports.find(query).sort("created_at", -1).limit(200)
        rows = []
        for document in documents:
            params = document.get("params") or document.get("parameters") or {}
            rows.append(
                {
                    "created_at": document.get("created_at"),
                    "name": document.get("name")
                    or document.get("report")
                    or document.get("notebook"),
                    "status": document.get("status"),
                    "project": params.get("project") or document.get("project"),
                    "time_range": params.get("time_range"),
                    "html_path": document.get("html_path")
                    or (document.get("paths") or {}).get("html"),
                    "notebook_path": document.get("notebook_path")
                    or (document.get("paths") or {}).get("notebook"),
                    "error": document.get("error"),
                }
            )
        return rows

    def update(self) -> None:
        import pandas as pd

        rows = self.load()
        self.listing.value = pd.DataFrame(rows, columns=REPORT_COLUMNS)
        parts: list[Any] = [pn.pane.Markdown(f"## Reports\n{ABOUT}")]
        if reports_available():
            parts.append(pn.Row(self.run_button, self.progress, self.status))
        else:
            parts.append(
                pn.pane.Alert(
                    "Report runs are not available in this installation yet: once the reports module is "
                    "installed, scheduled runs appear here and can be started with **Run report now**.",
                    alert_type="info",
                )
            )
        if not rows:
            parts.append(pn.pane.Markdown("No report has run yet."))
        parts.append(self.listing)
        self.body.objects = parts

    def run_now(self) -> None:
        """Run the project's report in a thread through the reports module, then list it."""
        from pystrument_lab import reports

        run = getattr(reports, "run_report", None)
        if run is None:
            self.warn("This version of the reports module has no run_report().")
            return
        project, time_range = self.state.project or None, self.state.time_range

        def work() -> None:
            try:
                self._outcome["result"] = run(project=project, time_range=time_range)
            except Exception as exc:  # shown on the page
                self._outcome["error"] = f"{type(exc).__name__}: {exc}"

        self._outcome = {}
        self.progress.visible = True
        self.status.object = "**running**…"
        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()
        if pn.state.curdoc is not None:
            self._poll = pn.state.add_periodic_callback(self._check, period=1000)

    def _check(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if self._poll is not None:
            self._poll.stop()
        self.progress.visible = False
        error = self._outcome.get("error")
        self.status.object = f"**failed**: {error}" if error else "**completed**"
        self.refresh()
