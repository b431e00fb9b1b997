"""Overview: every project's requests, p95, error rate and trend over the chosen range.

Projects whose p95 or error rate breach their alert thresholds
(``config.alert_threshold``) are marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import panel as pn

from panel_apps.page import Page
from panel_apps.snippets import no_data
from pystrument_lab import trends
from pystrument_lab.markup import html_text, markdown_text
from pystrument_lab.widgets.charts import sparkline
from pystrument_lab.widgets.timefmt import format_ms


def breaches(project: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    """The alert thresholds ``summary`` (a window's stats) breaches, as readable sentences."""
    limits = (project.get("config") or {}).get("alert_threshold") or {}
    found = []
    p95, limit = summary.get("p95"), limits.get("response_time")
    if p95 is not None and limit is not None and p95 > limit:
        found.append(f"p95 {format_ms(p95)} above {format_ms(limit)}")
    rate, limit = summary.get("error_rate"), limits.get("error_rate")
    if summary.get("count") and rate is not None and limit is not None and rate > limit:
        found.append(f"error rate {rate:.1%} above {limit:.1%}")
    return found


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return str(value)[:16].replace("T", " ") + " UTC"


class OverviewPage(Page):
    slug: ClassVar[str] = "overview"
    depends_on: ClassVar[tuple[str, ...]] = ("time_range",)

    def load(self) -> list[dict[str, Any]]:
        """One entry per project that is not archived: the project, its window summary and buckets."""
        span = trends.window(self.state.time_range)
        projects, _ = self.lab.store.list_projects(page=1, size=1000)
        entries = []
        for project in projects:
            if project.get("status") == "archived":
                continue
            result = trends.project_overview(self.lab.store, project["project_key"], span)
            entries.append(
                {
                    "project": project,
                    "summary": result["summary"],
                    "buckets": result["buckets"],
                    "alerts": breaches(project, result["summary"]),
                }
            )
        return entries

    def update(self) -> None:
        entries = self.load()
        if not entries:
            self.body.objects = [no_data()]
            return
        breaching = [e["project"]["name"] for e in entries if e["alerts"]]
        header = pn.pane.Markdown(
            f"## Projects, {markdown_text(self.state.time_range)}\n"
            + (
                f"**{len(breaching)} breaching alert thresholds:** {', '.join(markdown_text(name) for name in breaching)}"
                if breaching
                else "No project breaches its alert thresholds."
            ),
            sizing_mode="stretch_width",
        )
        cards = pn.FlexBox(*[self._card(entry) for entry in entries], sizing_mode="stretch_width")
        self.body.objects = [header, cards]

    def _card(self, entry: Mapping[str, Any]) -> pn.Card:
        project, summary = entry["project"], entry["summary"]
        last = project.get("last_activity")
        lines = [
            f"**{summary['count']:,}** requests · p95 **{format_ms(summary['p95']) if summary['p95'] is not None else '–'}**"
            f" · error rate **{summary['error_rate']:.1%}**",
            f"last activity: {_when(last)}" if last else "no data received yet",
        ]
        lines += [f"⚠ {markdown_text(text)}" for text in entry["alerts"]]
        open_button = pn.widgets.Button(label="Endpoints", color="primary", width=110)
        records_button = pn.widgets.Button(label="Records", width=100)
        name = project["name"]
        open_button.on_click(lambda _: self.state.open_project(name, "endpoints"))
        records_button.on_click(lambda _: self.state.open_project(name, "records"))
        alerting = bool(entry["alerts"])
        return pn.Card(
            pn.pane.Markdown("\n\n".join(lines), css_classes=["alerting"] if alerting else []),
            pn.pane.Markdown("requests over the range", margin=(0, 10)),
            pn.pane.Bokeh(sparkline(entry["buckets"], "count", width=290, height=90)),
            pn.Row(open_button, records_button),
            # Panel puts a Card's title into HTML as it is.
            title=("⚠ " if alerting else "") + html_text(name),
            header_background="#f8d7da" if alerting else "#e9f5ec",
            collapsible=False,
            width=320,
            margin=8,
        )
