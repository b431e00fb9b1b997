"""Copy-paste SDK snippets and the empty states that show them.

The snippets use the SDK's real entry points (``performance_monitor.flask``,
``performance_monitor.django``, ``performance_monitor.fastapi``, and the
``pystrument-run`` launcher with ``PERFORMANCE_MONITOR_*`` variables); unit
tests execute each one against its framework and the SDK's configuration so
they cannot drift from the SDK.
"""

from __future__ import annotations

from typing import Any

import panel as pn

from pystrument_lab.markup import markdown_text

FRAMEWORKS = ("flask", "django", "fastapi")

_FLASK = """\
from flask import Flask
from performance_monitor.flask import PerformanceMiddleware

app = Flask(__name__)
PerformanceMiddleware(app, {{
    "project_key": "{key}",
    "api_endpoint": "{endpoint}",
    "sampling_rate": {rate},  # share of requests profiled; every request is counted
    "app_version": "1.0",
}})
"""

_DJANGO = """\
# settings.py
MIDDLEWARE = [
    "performance_monitor.django.PerformanceMiddleware",
    # ... your other middleware
]
PERFORMANCE_MONITOR = {{
    "PROJECT_KEY": "{key}",
    "API_ENDPOINT": "{endpoint}",
    "SAMPLING_RATE": {rate},
    "APP_VERSION": "1.0",
}}
"""

_FASTAPI = """\
from fastapi import FastAPI
from performance_monitor.fastapi import PerformanceMiddleware

app = FastAPI()
app.add_middleware(
    PerformanceMiddleware,
    project_key="{key}",
    api_endpoint="{endpoint}",
    sampling_rate={rate},
    app_version="1.0",
)
"""

_TEMPLATES = {"flask": _FLASK, "django": _DJANGO, "fastapi": _FASTAPI}

# No code change: the same settings as environment variables, the app under the launcher.
_LAUNCHER = """\
export PERFORMANCE_MONITOR_PROJECT_KEY={key}
export PERFORMANCE_MONITOR_API_ENDPOINT={endpoint}
export PERFORMANCE_MONITOR_SAMPLING_RATE={rate}
export PERFORMANCE_MONITOR_APP_VERSION=1.0

{command}
"""
_LAUNCHER_COMMANDS = {
    "flask": "pystrument-run gunicorn -w 4 app:app   # or: pystrument-run flask --app app run",
    "django": "pystrument-run gunicorn mysite.wsgi   # or: pystrument-run python manage.py runserver",
    "fastapi": "pystrument-run uvicorn main:app   # --workers and --reload work too",
}
_INSTALL = "pip install pystrument-sdk   # from this repository: pip install ./sdk"


def collector_endpoint() -> str:
    from pystrument_lab.settings import get_settings

    return str(get_settings().collector_url)


def sdk_snippet(
    framework: str, project_key: str, *, endpoint: str | None = None, sampling_rate: float = 0.3
) -> str:
    """The code that adds the SDK to a ``framework`` app reporting to this collector."""
    template = _TEMPLATES.get(framework, _FLASK)
    return template.format(
        key=project_key, endpoint=endpoint or collector_endpoint(), rate=sampling_rate
    )


def launcher_snippet(
    framework: str, project_key: str, *, endpoint: str | None = None, sampling_rate: float = 0.3
) -> str:
    """The shell lines that start an unmodified ``framework`` app under ``pystrument-run``."""
    return _LAUNCHER.format(
        key=project_key,
        endpoint=endpoint or collector_endpoint(),
        rate=sampling_rate,
        command=_LAUNCHER_COMMANDS.get(framework, _LAUNCHER_COMMANDS["flask"]),
    )


def snippet_tabs(
    project_key: str, *, framework: str = "flask", sampling_rate: float = 0.3
) -> pn.Tabs:
    """One tab per framework, the project's own framework first."""
    order = (
        [framework, *(f for f in FRAMEWORKS if f != framework)]
        if framework in FRAMEWORKS
        else FRAMEWORKS
    )
    tabs = [
        (
            name.capitalize() if name != "fastapi" else "FastAPI",
            pn.widgets.CodeEditor(
                value=sdk_snippet(name, project_key, sampling_rate=sampling_rate),
                language="python",
                readonly=True,
                height=260,
                sizing_mode="stretch_width",
            ),
        )
        for name in order
    ]
    tabs.append(
        (
            "No code change",
            pn.widgets.CodeEditor(
                value=launcher_snippet(order[0], project_key, sampling_rate=sampling_rate),
                language="sh",
                readonly=True,
                height=260,
                sizing_mode="stretch_width",
            ),
        )
    )
    return pn.Tabs(*tabs, sizing_mode="stretch_width")


def no_data(project: dict[str, Any] | None = None) -> pn.Column:
    """The empty state of a project (or of the whole store): how to start sending data."""
    if project is None:
        text = (
            "### No projects yet\n"
            "Create one on the **Projects** page (or `pystrument projects create shop --framework flask`), "
            "then add the SDK to your app. To try the dashboard on sample data, run `pystrument demo`."
        )
        return pn.Column(
            pn.pane.Markdown(text, sizing_mode="stretch_width"), sizing_mode="stretch_width"
        )
    text = (
        f"### No data yet for {markdown_text(project['name'])}\n"
        f"Install the SDK (`{_INSTALL}`) and add it to your app like this; requests show up here "
        "within seconds of the first request."
    )
    config = project.get("config") or {}
    return pn.Column(
        pn.pane.Markdown(text, sizing_mode="stretch_width"),
        snippet_tabs(
            project["project_key"],
            framework=project.get("framework") or "flask",
            sampling_rate=config.get("sampling_rate", 0.3),
        ),
        sizing_mode="stretch_width",
    )
