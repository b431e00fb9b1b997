"""The doctor's checks of the services: store, collector, indexes, workers and schedulers."""

from __future__ import annotations

import time
from typing import Any

from pystrument_lab.doctor.findings import DAY, Finding, plural, redact_url
from pystrument_lab.settings import Settings

#: A process whose heartbeat is older than this many intervals is taken for dead.
MISSED_BEATS = 3


def check_store(settings: Settings) -> tuple[str | None, Finding]:
    from pystrument_lab.embedded import EmbeddedServer, _ping

    if settings.mongodb_url:
        shown = redact_url(settings.mongodb_url)
        if _ping(settings.mongodb_url, timeout_ms=settings.store_timeout_ms):
            return settings.mongodb_url, Finding(
                "store", "ok", f"the store at {shown} answers", data={"url": shown}
            )
        return None, Finding(
            "store",
            "problem",
            f"the store at {shown} (PYSTRUMENT_MONGODB_URL) does not answer within "
            f"{settings.store_timeout_ms} ms",
            "check that MongoDB runs and that the host, port, user and password in "
            "PYSTRUMENT_MONGODB_URL are right; every collector, worker and scheduler fails "
            "until it answers",
            {"url": shown, "embedded": False},
        )
    server = EmbeddedServer(settings.home, port=settings.store_port)
    state = server.state()
    if state is None:
        return None, Finding(
            "store",
            "problem",
            f"the embedded store is not running (its data is in {server.data_dir})",
            "start it with `pystrument store start`, or everything with `pystrument up`; "
            "for a real MongoDB set PYSTRUMENT_MONGODB_URL",
            {"embedded": True, "data_dir": str(server.data_dir)},
        )
    if not _ping(state.url, timeout_ms=settings.store_timeout_ms):
        return None, Finding(
            "store",
            "problem",
            f"the embedded store (pid {state.pid}) runs but does not answer on {state.url}",
            f"see {server.log_file}; `pystrument store stop` then `pystrument store start`",
            {"embedded": True, "url": state.url, "pid": state.pid},
        )
    return state.url, Finding(
        "store",
        "ok",
        f"the embedded store answers on {state.url} (data in {state.data_dir})",
        data={"embedded": True, "url": state.url, "data_dir": state.data_dir},
    )


def check_collector(url: str) -> Finding:
    import httpx

    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=3.0, trust_env=False)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return Finding(
            "collector",
            "problem",
            f"no collector answers at {url}",
            "start one with `pystrument collector` (or give its address with --collector-url; "
            "SDKs send to the API_ENDPOINT they are configured with)",
            {"url": url},
        )
    if body.get("code") != 0:
        return Finding(
            "collector",
            "problem",
            f"the collector at {url} answers but reports: {body.get('msg')}",
            "it cannot reach the store; see the store finding",
            {"url": url},
        )
    return Finding("collector", "ok", f"the collector at {url} answers", data={"url": url})


def check_indexes(store: Any) -> Finding:
    missing = store.missing_indexes()
    if missing:
        return Finding(
            "indexes",
            "problem",
            f"{len(missing)} indexes are missing: {', '.join(missing)}",
            "run `pystrument doctor --create-indexes` (a collector also creates them when it "
            "starts); without them queries scan whole collections",
            {"missing": missing},
        )
    return Finding("indexes", "ok", "every index is in place")


def check_processes(store: Any) -> list[Finding]:
    from pystrument_lab.analysis.jobs import queue_stats
    from pystrument_lab.reports.scheduler import HEARTBEAT_SECONDS

    now = time.time()
    horizon = MISSED_BEATS * HEARTBEAT_SECONDS
    findings = []
    leases = queue_stats(store)["workers"]  # a worker deep in a long job still renews its lease
    workers = {
        doc["name"] for doc in store.heartbeats("worker") if now - doc["heartbeat"] < horizon
    } | set(leases)
    pending = store.analysis_outcomes(now - DAY)["pending"]
    if workers:
        findings.append(
            Finding(
                "workers",
                "ok",
                f"{plural(len(workers), 'analysis worker')} alive",
                data={"workers": sorted(workers), "pending": pending},
            )
        )
    else:
        findings.append(
            Finding(
                "workers",
                "problem",
                f"no analysis worker is alive (none has sent a heartbeat in the last {horizon:.0f} s)"
                f"; {plural(pending, 'analysis', 'analyses')} {'is' if pending == 1 else 'are'} waiting",
                "start one with `pystrument worker` (more on other machines if the queue grows)",
                {"workers": [], "pending": pending},
            )
        )
    schedulers = [
        doc["name"] for doc in store.heartbeats("scheduler") if now - doc["heartbeat"] < horizon
    ]
    if schedulers:
        findings.append(
            Finding(
                "schedulers",
                "ok",
                f"{plural(len(schedulers), 'scheduler')} alive",
                data={"schedulers": schedulers},
            )
        )
    else:
        findings.append(
            Finding(
                "schedulers",
                "problem",
                "no scheduler is alive: scheduled reports and the daily cleanup do not run",
                "start one with `pystrument scheduler` (a second one on another machine is "
                "harmless: each run is claimed once)",
            )
        )
    return findings
