"""The state one browser session shares across pages, and its URL query parameters.

A page reads the project, route, trace and time range from :class:`AppState`
and navigates by setting them; ``sync_location`` mirrors them into the URL
(``?page=endpoints&project=shop&route=/api/search&range=24h``) so a link can be
pasted into a chat and opens the same view. Without ``range`` in the URL the
dashboard picks one that fits the data (:func:`fitted_range`) and writes it there.
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
#: The ranges a default is chosen from, smallest first (see :func:`fitted_range`).
FITTED_RANGES = ("15m", "1h", "24h", "7d")
#: The range when the data gives no hint (nothing in the last 7 days).
DEFAULT_RANGE = "24h"
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
    trace = param.String(
        default="",
        doc="record key (<trace id>-<span id>) of the chosen request, or a trace id: "
        "the trace page opens its request, or lists them when the trace has several",
    )
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
        """Open a request by its record key (or a trace id: its requests to choose from)."""
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


def fitted_range(lab: Lab, projects: list[str]) -> str:
    """The smallest of :data:`FITTED_RANGES` that holds the projects' recent data.

    "Recent" is the last 7 days: the range must reach back to the oldest
    sampled request of that week (one indexed query per project: the oldest
    record since then), so a fresh install's few minutes of data fill the
    15-minute range instead of a sliver of 24 hours. Without any record in
    the week the range is :data:`DEFAULT_RANGE`.
    """
    from datetime import datetime, timezone

    from pystrument_lab.trends import parse_duration

    now = datetime.now(timezone.utc)
    oldest: datetime | None = None
    for project in projects:
        first = lab.records(project, time_range=FITTED_RANGES[-1], sort="timestamp", limit=1)
        if first.height:
            stamp = first["timestamp"][0]
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
            oldest = stamp if oldest is None else min(oldest, stamp)
    if oldest is None:
        return DEFAULT_RANGE
    age = now - oldest
    return next((name for name in FITTED_RANGES if age <= parse_duration(name)), FITTED_RANGES[-1])


def sync_location(state: AppState) -> None:
    """Mirror the state into the URL query and back (only inside a served session)."""
    import panel as pn

    if pn.state.location is not None:
        pn.state.location.sync(state, QUERY_PARAMETERS)
