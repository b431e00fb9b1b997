"""The state one browser session shares across pages, and its URL query parameters.

A page reads the project, route, trace and time range from :class:`AppState`
and navigates by setting them; ``sync_location`` mirrors them into the URL
(``?page=endpoints&project=shop&route=/api/search&range=24h``) so a link can be
pasted into a chat and opens the same view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import param

if TYPE_CHECKING:
    from pystrument_lab.loaders import Lab

PAGES: dict[str, str] = {
    "overview": "Overview",
    "projects": "Projects",
    "endpoints": "Endpoints",
    "records": "Records",
    "trace": "Trace detail",
    "versions": "Versions",
    "analysis": "Analysis",
    "reports": "Reports",
}
TIME_RANGES: dict[str, str] = {
    "15m": "last 15 minutes",
    "1h": "last hour",
    "6h": "last 6 hours",
    "24h": "last 24 hours",
    "7d": "last 7 days",
    "30d": "last 30 days",
}
#: AppState parameter -> URL query parameter.
QUERY_PARAMETERS: dict[str, str] = {
    "page": "page",
    "project": "project",
    "route": "route",
    "trace": "trace",
    "time_range": "range",
    "version_a": "a",
    "version_b": "b",
}


class AppState(param.Parameterized):
    """Where the user is: page, project, route, trace, time range, versions compared."""

    page: str = param.Selector(  # type: ignore[assignment]
        objects=list(PAGES), default="overview"
    )
    project = param.String(default="", doc="project name")
    route = param.String(default="", doc="route template of the chosen endpoint")
    trace = param.String(default="", doc="trace id of the chosen record")
    time_range: str = param.Selector(  # type: ignore[assignment]
        objects=list(TIME_RANGES), default="24h"
    )
    version_a = param.String(default="")
    version_b = param.String(default="")
    #: Set by a page asking the analysis page to start work: ("record", trace) or ("endpoint", route).
    analysis_request = param.Tuple(default=("", ""), length=2)

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(**params)
        self.lab = lab

    def open_project(self, project: str, page: str = "endpoints") -> None:
        self.param.update(project=project, route="", trace="", page=page)

    def open_trace(self, trace: str) -> None:
        self.param.update(trace=trace, page="trace")

    def request_analysis(self, kind: str, target: str) -> None:
        self.param.update(analysis_request=(kind, target), page="analysis")

    def link(self, **changes: str) -> str:
        """A relative deep link to the current view with ``changes`` applied."""
        from urllib.parse import urlencode

        values = {name: getattr(self, name) for name in QUERY_PARAMETERS}
        values.update(changes)
        query = {QUERY_PARAMETERS[k]: v for k, v in values.items() if v}
        return "?" + urlencode(query)


def sync_location(state: AppState) -> None:
    """Mirror the state into the URL query and back (only inside a served session)."""
    import panel as pn

    if pn.state.location is not None:
        pn.state.location.sync(state, QUERY_PARAMETERS)
