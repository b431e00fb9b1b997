"""Analysis: analyse a record, an endpoint or a batch of slow requests; the results; the history.

The work is :func:`pystrument_lab.analysis.analyze` (rule engine or the
configured LLM), run in a background thread so the page stays responsive and
shows progress; each result is saved in ``ai_analysis_results`` as a manual
analysis and so appears in the history, next to the jobs workers ran.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.state import AppState
from pystrument_lab.errors import PystrumentError
from pystrument_lab.markup import markdown_text

KINDS = {
    "record": "One request (trace id)",
    "endpoint": "An endpoint (merged requests)",
    "batch": "The slowest requests",
}
HISTORY_COLUMNS = ["created_at", "status", "analysis_type", "route", "trace_id", "score", "id"]


@dataclass
class AnalysisRun:
    """One click of "Run": its targets, progress and results (written by the worker thread)."""

    kind: str
    targets: list[Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    done: bool = False

    @property
    def status(self) -> str:
        if not self.done:
            return "running"
        if self.error or any(r.get("status") == "failed" for r in self.results):
            return "failed"
        return "completed"

    def execute(self, store: Any) -> None:
        from pystrument_lab.analysis import analyze

        try:
            for target in self.targets:
                self.results.append(dict(analyze(target, store=store)))
        except PystrumentError as exc:
            self.error = exc.message
        except Exception as exc:  # shown to the user instead of lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done = True


class AnalysisPage(Page):
    slug: ClassVar[str] = "analysis"
    depends_on: ClassVar[tuple[str, ...]] = ("project", "analysis_request")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.kind = pn.widgets.RadioButtonGroup(
            options={v: k for k, v in KINDS.items()}, value="record"
        )
        self.trace = pn.widgets.TextInput(
            label="Trace id", placeholder="from the Records page", width=320
        )
        self.route = pn.widgets.Select(label="Endpoint", width=320)
        self.batch_size = pn.widgets.IntInput(
            label="How many of the slowest requests", value=5, start=1, end=50, width=220
        )
        self.run_button = pn.widgets.Button(label="Run analysis", color="primary")
        self.run_button.on_click(self._run_clicked)
        self.progress = pn.indicators.Progress(
            active=False, visible=False, width=320, bar_color="primary"
        )
        self.status = pn.pane.Markdown("", css_classes=["analysis-status"])
        self.result = pn.pane.HTML("", sizing_mode="stretch_width")
        self.history = pn.widgets.Tabulator(
            show_index=False,
            disabled=True,
            sizing_mode="stretch_width",
            height=260,
            layout="fit_data_stretch",
        )
        self.history.on_click(self._history_clicked)
        self.run: AnalysisRun | None = None
        self._poll: Any = None
        self._started_request: tuple[str, str] = ("", "")

    # -- running ------------------------------------------------------------

    def targets(self) -> list[Any]:
        """What analyze() is called on for the chosen kind."""
        project = self.state.project
        if self.kind.value == "record":
            if not (self.trace.value or "").strip():
                raise PystrumentError(
                    "Enter the trace id of a request (open one from the Records page)."
                )
            return [(self.trace.value or "").strip()]
        if self.kind.value == "endpoint":
            if not self.route.value:
                raise PystrumentError("Choose an endpoint.")
            return [(project, self.route.value)]
        slowest = self.lab.records(
            project,
            time_range=self.state.time_range,
            sort="-total_duration",
            limit=self.batch_size.value,
        )
        if slowest.height == 0:
            raise PystrumentError(
                f"No sampled requests in the {self.state.time_range} range to analyse."
            )
        return slowest["record_key"].to_list()

    def _run_clicked(self, _: Any) -> None:
        self.start()

    def start(self, *, background: bool = True) -> AnalysisRun | None:
        if self.run is not None and not self.run.done:
            self.warn("An analysis is already running.", "info")
            return None
        try:
            self.run = AnalysisRun(self.kind.value, self.targets())
        except PystrumentError as exc:
            self.warn(exc.message)
            return None
        self.message.visible = False
        self.result.object = ""
        self.progress.param.update(visible=True, active=True, value=-1, max=len(self.run.targets))
        self.status.object = f"**running**: analysing {len(self.run.targets)} target(s)…"
        self.run_button.disabled = True
        if not background:
            self.run.execute(self.lab.store)
            self.show_progress()
            return self.run
        threading.Thread(target=self.run.execute, args=(self.lab.store,), daemon=True).start()
        if pn.state.curdoc is not None:
            self._poll = pn.state.add_periodic_callback(self.show_progress, period=400)
        return self.run

    def show_progress(self) -> None:
        run = self.run
        if run is None:
            return
        if len(run.targets) > 1:
            self.progress.param.update(active=False, value=len(run.results))
        if not run.done:
            self.status.object = f"**running**: {len(run.results)} of {len(run.targets)} done…"
            return
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        self.progress.param.update(visible=False, active=False)
        self.run_button.disabled = False
        self.status.object = f"**{markdown_text(run.status)}**" + (
            f": {markdown_text(run.error)}" if run.error else f" ({len(run.results)} analysed)"
        )
        if run.results:
            from pystrument_lab.analysis import render_analysis_html

            self.result.object = "<hr>".join(render_analysis_html(r) for r in run.results)
        self._fill_history()

    # -- view ---------------------------------------------------------------

    def _fill_history(self) -> None:
        from pystrument_lab.analysis.jobs import history

        project = self.lab.store.project_by_name(self.state.project) or self.lab.store.find_project(
            self.state.project
        )
        if project is None:
            return
        items, _ = history(self.lab.store, project["project_key"], limit=50)
        rows = [
            {
                **{name: item.get(name) for name in HISTORY_COLUMNS},
                "score": ((item.get("analysis_results") or {}).get("performance_score")),
            }
            for item in items
        ]
        self.history.value = _frame(rows, HISTORY_COLUMNS)

    def _history_clicked(self, event: Any) -> None:
        from pystrument_lab.analysis import render_analysis_html
        from pystrument_lab.analysis.jobs import get_analysis

        document = get_analysis(self.lab.store, str(self.history.value.iloc[event.row]["id"]))
        if document is not None:
            self.status.object = f"**{markdown_text(document.get('status'))}** (from the history)"
            self.result.object = render_analysis_html(document)

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
        self.route.options = routes
        if self.state.route in routes:
            self.route.value = self.state.route
        if self.state.trace:
            self.trace.value = self.state.trace
        self._fill_history()
        inputs = pn.Column(
            self.kind,
            pn.Row(self.trace, visible=self.kind.param.value.rx() == "record"),
            pn.Row(self.route, visible=self.kind.param.value.rx() == "endpoint"),
            pn.Row(self.batch_size, visible=self.kind.param.value.rx() == "batch"),
            pn.Row(self.run_button, self.progress),
        )
        self.body.objects = [
            pn.pane.Markdown(
                f"## Analysis of {markdown_text(project)}\nFinds bottlenecks in call trees and suggests fixes "
                "(the rule engine offline; an LLM when one is configured)."
            ),
            inputs,
            self.status,
            self.result,
            pn.pane.Markdown("### History (click a row to show it)"),
            self.history,
        ]
        request = tuple(self.state.analysis_request)
        if request[0] and request != self._started_request:
            self._started_request = (str(request[0]), str(request[1]))
            kind, target = request
            self.kind.value = kind
            if kind == "record":
                self.trace.value = target
            else:
                if target not in self.route.options:
                    self.route.options = [*self.route.options, target]
                self.route.value = target
            self.start()


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)
