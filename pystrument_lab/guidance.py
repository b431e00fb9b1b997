"""What the Lab and the magics tell a user whose store, project or version holds no data.

Each message says what was found (the store's URL and data directory, the
project's key prefix and sampling rate, the versions that have data) and what
to check next; the facts come from the store, not from guesses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pystrument_lab.store.schema import mask

__all__ = [
    "NoDataWarning",
    "StoreNotice",
    "missing_project",
    "missing_versions",
    "no_data",
    "started_store",
]

#: At most this many project names in a message.
NAMES_SHOWN = 10
DAY = 86_400.0


class StoreNotice(UserWarning):
    """Opening the Lab started the embedded store (maybe a new, empty one)."""


class NoDataWarning(UserWarning):
    """A result is empty because the data asked for does not exist (e.g. a version)."""


def started_store(url: str, data_dir: Path, home: Path, projects: int) -> str:
    """The notice of a Lab that had to start the embedded store itself."""
    where = f"started the embedded store at {url} (data in {data_dir})"
    if projects:
        return f"{where}: it was not running; {projects} project(s) in it."
    return (
        f"{where}: it was not running and it is EMPTY, no project. If your data is elsewhere, "
        f"stop it with `pystrument store stop` and set PYSTRUMENT_HOME (now {home}) to the "
        "home `pystrument up` runs with, or PYSTRUMENT_MONGODB_URL to your MongoDB."
    )


def missing_project(project: str, store: Any) -> str:
    """Why ``project`` is not found: the store looked in and the projects it has."""
    items, total = store.list_projects(page=1, size=NAMES_SHOWN)
    where = f"the store at {store.url} (database {store.database_name})"
    if not total:
        return (
            f"no project named or keyed {project!r}: {where} has no project at all. Is it the "
            "store your collector writes to? (PYSTRUMENT_MONGODB_URL, else the embedded store "
            "of PYSTRUMENT_HOME; `pystrument status` shows the running one)"
        )
    names = ", ".join(str(item["name"]) for item in items)
    more = f" and {total - len(items)} more" if total > len(items) else ""
    return f"no project named or keyed {project!r} in {where}; its projects: {names}{more}"


def no_data(project: dict[str, Any], store: Any, what: str, collector_url: str) -> str:
    """What to check when a project shows no ``what`` (e.g. "requests in the last 24h")."""
    key = str(project["project_key"])
    config = project.get("config") or {}
    rate = float(config.get("sampling_rate", 0.3) or 0)
    last = [t for t in (store.last_record_time(key), store.last_metric_time(key)) if t]
    seen = f"its last data arrived {max(last):%Y-%m-%d %H:%M} UTC" if last else "it never had data"
    checks = [
        f"the app's SDK sends this project's key ({mask(key)}, PROJECT_KEY)",
        f"its sampling rate is {rate:.0%}: only sampled requests become records "
        "(the metrics count every request)",
        f"the SDK's API_ENDPOINT reaches the collector (here {collector_url}); "
        "`python -m performance_monitor check` where the app runs sends a test record",
    ]
    if not config.get("enabled", True):
        checks.insert(0, "the project is disabled: its SDKs send nothing until it is enabled")
    refused = [item["prefix"] for item in store.unknown_keys(time.time() - DAY)]
    if refused:
        checks.append(f"the collector refused unknown keys {', '.join(refused)}… in the last day")
    lines = "\n".join(f"  - {check}" for check in checks)
    return f"project {project['name']} has no {what}; {seen}. Check that:\n{lines}"


def missing_versions(
    project: str, missing: Sequence[str], seen: Sequence[str], time_range: str
) -> str:
    """A comparison with a version that has no data: which ones do."""
    have = ", ".join(seen) if seen else "none"
    return (
        f"project {project} has no requests of version {', '.join(missing)} in the last "
        f"{time_range}; versions with data: {have}. (Versions come from the SDK's app_version; "
        "a longer range looks further back.)"
    )
