"""Serve the corpus, send it traffic, and analyse what the real SDK and collector stored.

:func:`run_corpus` starts a collector on the given store, one project per
framework, the slow downstream service and the three apps on real servers;
sends every case the same number of sequential requests; waits until each
case's records are stored; stops the apps (they flush on SIGTERM); then, per
case, runs the rule engine on the endpoint, ``analyze((project_key, route),
service="rules")``, and on one warm record, ``analyze(trace_id)`` (the
median-duration record among those after the endpoint's first request).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pystrument_lab.analysis import analyze
from pystrument_lab.store import Store
from tests.analysis_corpus.cases import CASES, Case, Framework
from tests.analysis_corpus.downstream import serve_downstream
from tests.analysis_corpus.evidence import summarize
from tests.analysis_corpus.servers import AppServer, sdk_environment
from tests.utils.services import CollectorProcess

REQUESTS_PER_CASE = 6
ALARMING = ("critical", "high")


def top_finding(report: dict[str, Any]) -> tuple[str, str] | None:
    """(type, function) of the first bottleneck of an analysis, or None when there is none."""
    findings = (report.get("analysis_results") or {}).get("bottleneck_analysis") or []
    return (findings[0]["type"], findings[0]["function"]) if findings else None


def alarms(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(severity, type, function) of every critical or high finding."""
    findings = (report.get("analysis_results") or {}).get("bottleneck_analysis") or []
    return [
        (f["severity"], f["type"], f["function"]) for f in findings if f["severity"] in ALARMING
    ]


@dataclass
class CaseOutcome:
    case: Case
    route: str
    records: int
    trace_id: str
    endpoint: dict[str, Any]
    record: dict[str, Any]
    evidence: str = ""
    statuses: list[int] = field(default_factory=list)

    def judged(self, report: dict[str, Any]) -> bool:
        if self.case.healthy:
            return not alarms(report)
        return top_finding(report) == (self.case.type, self.case.function)

    @property
    def endpoint_hit(self) -> bool:
        return self.judged(self.endpoint)

    @property
    def record_hit(self) -> bool:
        return self.judged(self.record)


def _send_traffic(server: AppServer, cases: Sequence[Case], requests: int) -> dict[str, list[int]]:
    statuses: dict[str, list[int]] = {}
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        for case in cases:
            statuses[case.name] = [client.get(case.path).status_code for _ in range(requests)]
    return statuses


def _stored(store: Store, key: str, case: Case, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records, _ = store.find_records(
            key, path=case.path, sort="timestamp", limit=None, with_total=False
        )
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _warm_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The median-duration record after the endpoint's first (cold) request."""
    warm = sorted(records[1:] or records, key=lambda r: r["performance_metrics"]["total_duration"])
    return warm[len(warm) // 2]


def run_corpus(
    mongo_url: str,
    home: Path,
    *,
    cases: Sequence[Case] = CASES,
    requests: int = REQUESTS_PER_CASE,
    store_timeout: float = 60.0,
) -> list[CaseOutcome]:
    """Run the corpus end to end on a fresh database of ``mongo_url``; dropped at the end."""
    database = "corpus_" + uuid.uuid4().hex[:12]
    store = Store(mongo_url, database=database)
    store.ensure_indexes()
    collector = CollectorProcess(store.url, database, home)
    collector.start()
    servers: list[AppServer] = []
    try:
        frameworks: list[Framework] = list(dict.fromkeys(case.framework for case in cases))
        keys = {
            framework: collector.create_project(
                f"corpus-{framework}-{uuid.uuid4().hex[:6]}",
                framework=framework,
                sampling_rate=1.0,
            )["project_key"]
            for framework in frameworks
        }
        statuses: dict[str, list[int]] = {}
        with serve_downstream() as downstream:
            for framework in frameworks:
                env = sdk_environment(keys[framework], collector.url)
                env["CORPUS_DOWNSTREAM"] = downstream
                servers.append(AppServer(framework, home, env))
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready()
            # One app at a time, one request at a time: nothing else competes for the CPU.
            for server in servers:
                mine = [case for case in cases if case.framework == server.framework]
                statuses.update(_send_traffic(server, mine, requests))
            stored = {
                case.name: _stored(store, keys[case.framework], case, requests, store_timeout)
                for case in cases
            }
            for server in servers:
                server.stop()
        outcomes = []
        for case in cases:
            records = stored[case.name]
            if not records:
                raise RuntimeError(f"no records stored for {case.name}: {statuses[case.name]}")
            key = keys[case.framework]
            route = records[0]["route"]
            chosen = _warm_record(records)
            tree = store.get_call_tree(key, chosen["trace_id"]) or {}
            outcomes.append(
                CaseOutcome(
                    case=case,
                    route=route,
                    records=len(records),
                    trace_id=chosen["trace_id"],
                    endpoint=analyze((key, route), service="rules", store=store),
                    record=analyze(chosen["trace_id"], store=store),
                    evidence=summarize(chosen, tree.get("nodes") or []),
                    statuses=statuses[case.name],
                )
            )
        return outcomes
    finally:
        for server in servers:
            server.stop()
        collector.stop()
        store.client.drop_database(database)
        store.close()
