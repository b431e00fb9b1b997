"""Running the demo: the bounded run that seeds a store, and the run-until-stopped mode."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from pystrument_lab.demo.app import PROJECT_NAME, VERSIONS
from pystrument_lab.demo.server import DemoServer
from pystrument_lab.demo.traffic import drive, drive_steadily, request_plan
from pystrument_lab.errors import PystrumentError

DEFAULT_DEMO_PORT = 8050
COLLECTOR_WAIT = 60.0


def default_api_endpoint() -> str:
    """``PYSTRUMENT_API_ENDPOINT``, else the local collector's port."""
    explicit = os.environ.get("PYSTRUMENT_API_ENDPOINT")
    if explicit:
        return explicit.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('PYSTRUMENT_COLLECTOR_PORT', '8000')}"


def demo_port() -> int:
    return int(os.environ.get("PYSTRUMENT_DEMO_PORT", DEFAULT_DEMO_PORT))


def _connect(store: Any) -> Any:
    if store is not None:
        return store
    from pystrument_lab.store import connect

    return connect()


def ensure_demo_project(store: Any) -> dict[str, Any]:
    """The ``demo-shop`` project, created (FastAPI, every request profiled) when missing."""
    project = store.project_by_name(PROJECT_NAME)
    if project is not None:
        return dict(project)
    return dict(
        store.create_project(
            PROJECT_NAME,
            framework="fastapi",
            description="The instrumented demo shop (pystrument demo).",
            sampling_rate=1.0,
        )
    )


def stored_counts(store: Any, project_key: str, version: str) -> tuple[int, int]:
    """(performance records, requests counted by the 1-minute metric documents) for a version."""
    return (
        store.count_version_records(project_key, version),
        store.version_request_count(project_key, version),
    )


def wait_for_collector(
    store: Any,
    server: DemoServer,
    project_key: str,
    targets: dict[str, tuple[int, int]],
    timeout: float = COLLECTOR_WAIT,
) -> None:
    """Flush the SDK until the store holds at least ``targets[version]`` (records, metrics)."""
    deadline = time.monotonic() + timeout
    while True:
        server.flush(timeout=5.0)
        counts = {version: stored_counts(store, project_key, version) for version in targets}
        if all(counts[v][0] >= targets[v][0] and counts[v][1] >= targets[v][1] for v in targets):
            return
        if time.monotonic() > deadline:
            raise PystrumentError(
                f"the collector at {server.middlewares[VERSIONS[0]].config.api_endpoint} did not "
                f"store the demo traffic within {timeout:g}s (stored {counts}, expected {targets}); "
                "is the collector running and using the same store?"
            )
        time.sleep(0.2)


def run_demo(api_endpoint: str, *, requests_per_version: int, store: Any = None) -> dict[str, Any]:
    """Drive ``requests_per_version`` requests through each version and wait until stored.

    Returns ``{project_key, project, versions, requests_per_version, collector}``.
    With the project's sampling rate at 1.0 (as created) every request leaves
    a performance record; the metric stream counts every request regardless.
    """
    if requests_per_version < 1:
        raise PystrumentError("requests_per_version must be at least 1")
    from pystrument_lab.embedded import free_port

    store = _connect(store)
    project = ensure_demo_project(store)
    key = project["project_key"]
    profiled = float(project.get("config", {}).get("sampling_rate", 1.0)) >= 1.0
    plan = request_plan(requests_per_version)
    with DemoServer(project_key=key, api_endpoint=api_endpoint, port=free_port()) as server:
        targets = {}
        for version in VERSIONS:
            records, metrics = stored_counts(store, key, version)
            statuses = drive(server.url, version, plan)
            if set(statuses) != {200}:
                raise PystrumentError(f"the demo shop {version} answered {dict(statuses)}")
            targets[version] = (records + requests_per_version * profiled, metrics + len(plan))
        wait_for_collector(store, server, key, targets)
    return {
        "project_key": key,
        "project": PROJECT_NAME,
        "versions": list(VERSIONS),
        "requests_per_version": requests_per_version,
        "collector": api_endpoint,
    }


def run_until_stopped(
    api_endpoint: str,
    *,
    port: int,
    rate: float = 2.0,
    stop: threading.Event | None = None,
    store: Any = None,
) -> int:
    """Serve both versions on ``port`` and drive gentle traffic until ``stop`` is set."""
    stop = stop or threading.Event()
    project = ensure_demo_project(_connect(store))
    with DemoServer(
        project_key=project["project_key"], api_endpoint=api_endpoint, port=port
    ) as server:
        print(
            f"demo shop on {server.url} (versions {', '.join(VERSIONS)}; header X-Demo-Version), "
            f"project {PROJECT_NAME!r} key {project['project_key']}, sending to {api_endpoint}",
            flush=True,
        )
        sent = drive_steadily(server.url, VERSIONS, rate=rate, should_stop=stop.is_set)
    return sent
