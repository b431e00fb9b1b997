"""Reports: the archive of report runs (executed notebooks), "run now", and background work.

Reports are papermill runs of the notebooks in ``notebooks/reports/``
(:mod:`pystrument_lab.reports`), scheduled or started here; each run is a
document in the ``reports`` collection. A finished report's HTML opens at
``/report?id=...`` (:func:`report_view`). Below the archive, what
``pystrument jobs`` prints: the schedule, what runs now and the analysis
queues (:func:`pystrument_lab.reports.overview.job_overview`).
"""

from __future__ import annotations

import importlib.util
import threading
from html import escape
from pathlib import Path
from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.state import AppState
from panel_apps.tables import table, update_table
from pystrument_lab.markup import markdown_code, markdown_text

REPORT_COLUMNS = ["created_at", "template", "status", "trigger", "duration", "html", "error", "id"]
ABOUT = (
    "Reports are the notebooks of `notebooks/reports/` run with papermill for a project and a time "
    "range (on a schedule, or now): trends, regressions between versions and the slowest endpoints, "
    "kept as an executed notebook and HTML."
)


def reports_available() -> bool:
    return importlib.util.find_spec("pystrument_lab.reports") is not None


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def background_work(overview: dict[str, Any]) -> str:
    """Markdown of the schedule, the work running now and the analysis queues."""
    alive = [s["name"] for s in overview["schedulers"] if s["alive"]]
    lines = [
        "### Background work",
        f"Schedulers alive: {len(alive)}"
        + (
            f" ({', '.join(markdown_text(name) for name in alive)})"
            if alive
            else " — start one with `pystrument scheduler`"
        ),
        "",
    ]
    if overview["jobs"]:
        lines += ["| job | cron | runs | next | last | state |", "|---|---|---|---|---|---|"]
        for job in overview["jobs"]:
            state = "running" if job["running"] else (job["last_status"] or "never run")
            lines.append(
                f"| {markdown_text(job['name'])} | {markdown_code(job['cron'])} "
                f"| {markdown_text(job['template'] or job['task'])} "
                f"| {_when(job['next_run'])} | {_when(job['last_fire'])} | {state} |"
            )
        lines.append("")
    running = overview["running"]
    busy = [f"job {markdown_text(run['job'])}" for run in running["jobs"]] + [
        f"report {markdown_text(report['template'])} for "
        f"{markdown_text(report.get('project_name') or report['project_key'])}"
        for report in running["reports"]
    ]
    lines += [f"Running now: {', '.join(busy) if busy else 'nothing'}", ""]
    lines += [
        "| analysis queue | pending | running | completed (24 h) | failed (24 h) |",
        "|---|---|---|---|---|",
    ]
    for name, counts in overview["analysis"]["queues"].items():
        lines.append(
            f"| {markdown_text(name)} | {counts['pending']} | {counts['running']} "
            f"| {counts['completed']} | {counts['failed']} |"
        )
    workers = overview["analysis"]["workers"]
    lines += [
        "",
        f"Workers busy: {', '.join(markdown_text(w) for w in sorted(workers)) if workers else 'none'}",
    ]
    return "\n".join(lines)


def report_rows(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows of ``reports`` documents, with a link to each finished report's HTML."""
    rows = []
    for document in documents:
        paths = document.get("paths") or {}
        error = document.get("error") or {}
        rows.append(
            {
                "created_at": document.get("created_at"),
                "template": document.get("template"),
                "status": document.get("status"),
                "trigger": document.get("trigger"),
                "duration": None
                if document.get("duration") is None
                else round(float(document["duration"]), 1),
                "html": f"<a href='report?id={escape(str(document.get('id')))}' target='_blank'>open</a>"
                if paths.get("html")
                else "",
                "error": error.get("message") or error.get("evalue")
                if isinstance(error, dict)
                else str(error),
                "id": document.get("id"),
            }
        )
    return rows


class ReportsPage(Page):
    slug: ClassVar[str] = "reports"
    depends_on: ClassVar[tuple[str, ...]] = ("project", "time_range")

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(state, **params)
        self.listing = table(
            {name: [] for name in REPORT_COLUMNS}, REPORT_COLUMNS, pagination="local", page_size=20,
            formatters={"html": {"type": "html"}}, titles={"duration": "run time (s)", "html": "report"},
        )  # fmt: skip
        self.template = pn.widgets.Select(label="Report", width=200)
        self.run_button = pn.widgets.Button(label="Run report now", color="primary", align="end")
        self.run_button.on_click(lambda _: self.run_now())
        self.progress = pn.indicators.Progress(
            active=True, visible=False, width=200, align="center"
        )
        self.status = pn.pane.Markdown("")
        self._poll: Any = None
        self._thread: threading.Thread | None = None
        self._outcome: dict[str, Any] = {}

    def load(self) -> list[dict[str, Any]]:
        """The chosen project's reports (every project's when none is chosen), newest first."""
        from pystrument_lab.reports import list_reports

        return list_reports(self.lab.store, project=self.state.project or None, limit=200)

    def update(self) -> None:
        import pandas as pd

        if not reports_available():
            self.body.objects = [
                pn.pane.Markdown(f"## Reports\n{ABOUT}\n\nThe reports module is not installed.")
            ]
            return
        from pystrument_lab.reports import TEMPLATES_DIR
        from pystrument_lab.reports.overview import job_overview

        templates = sorted(path.stem for path in Path(TEMPLATES_DIR).glob("*.ipynb"))
        self.template.options = templates
        if self.template.value not in templates:  # a fresh Select has no value
            self.template.value = (
                "summary" if "summary" in templates else next(iter(templates), None)
            )
        rows = report_rows(self.load())
        update_table(self.listing, pd.DataFrame(rows, columns=REPORT_COLUMNS))
        parts: list[Any] = [pn.pane.Markdown(f"## Reports\n{ABOUT}")]
        if self.state.project:
            parts.append(pn.Row(self.template, self.run_button, self.progress, self.status))
        else:
            parts.append(pn.pane.Markdown("Choose a project to run a report for it."))
        if not rows:
            parts.append(pn.pane.Markdown("No report has run yet."))
        parts.append(self.listing)
        parts.append(pn.pane.Markdown(background_work(job_overview(self.lab.store))))
        self.body.objects = parts

    def run_now(self, *, background: bool = True) -> None:
        """Run the chosen report over the chosen range in a thread; list it when done."""
        from pystrument_lab.reports import run_report

        if not self.state.project or not self.template.value:
            self.warn("Choose a project and a report.")
            return
        project, template, start = (
            self.state.project,
            self.template.value,
            f"-{self.state.time_range}",
        )
        store = self.lab.store

        def work() -> None:
            try:
                self._outcome["result"] = run_report(project, template, start, "now", store=store)
            except Exception as exc:  # shown on the page
                self._outcome["error"] = f"{type(exc).__name__}: {exc}"

        self._outcome = {}
        self.progress.visible = True
        self.run_button.disabled = True
        self.status.object = f"**running** {markdown_text(template)} for {markdown_text(project)}…"
        if not background:
            work()
            self._check()
            return
        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()
        if pn.state.curdoc is not None:
            self._poll = pn.state.add_periodic_callback(self._check, period=1000)

    def _check(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        self.progress.visible = False
        self.run_button.disabled = False
        error = self._outcome.get("error")
        result = self._outcome.get("result") or {}
        self.status.object = (
            f"**failed**: {markdown_text(error)}"
            if error
            else f"**{markdown_text(result.get('status', 'done'))}**"
        )
        self.refresh()


def report_view() -> pn.viewable.Viewable:
    """The ``/report?id=...`` page: a finished report's HTML."""
    import pystrument_lab

    args = pn.state.session_args.get("id") or [b""]
    report_id = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    document = pystrument_lab.connect().store.get_report(report_id)
    path = ((document or {}).get("paths") or {}).get("html")
    if not path or not Path(path).exists():
        return pn.pane.Alert(
            f"No finished report with id {markdown_code(report_id)}.", alert_type="warning"
        )
    html = Path(path).read_text(encoding="utf-8")
    return pn.pane.HTML(
        f"<iframe srcdoc=\"{escape(html, quote=True)}\" style='width:100%;height:95vh;border:0'></iframe>",
        sizing_mode="stretch_both",
    )
