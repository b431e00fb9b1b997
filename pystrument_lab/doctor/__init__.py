"""``pystrument doctor``: what is wrong with this installation, in plain words.

Each check returns :class:`Finding` objects: ``ok``, ``warning`` (worth a
look, nothing is lost) or ``problem`` (data or work is being lost, or a
service is missing); the command exits 1 when there is a problem. Checks
read the store only through :class:`~pystrument_lab.store.Store` and never
start anything: a doctor that started the embedded store would hide that it
was down.
"""

from __future__ import annotations

from pystrument_lab.doctor.data import check_analysis, check_disk, check_projects
from pystrument_lab.doctor.findings import Finding, as_json, redact_url, render
from pystrument_lab.doctor.services import (
    check_collector,
    check_indexes,
    check_processes,
    check_store,
)
from pystrument_lab.settings import Settings

__all__ = [
    "CHECKS",
    "Finding",
    "as_json",
    "check_analysis",
    "check_indexes",
    "check_projects",
    "diagnose",
    "redact_url",
    "render",
]

CHECKS = ("store", "collector", "indexes", "workers", "schedulers", "projects", "analysis", "disk")


def diagnose(
    settings: Settings, *, collector_url: str | None = None, only: set[str] | None = None
) -> list[Finding]:
    """Every finding, store first; checks that need the store are skipped when it is down.

    ``only`` limits the checks to those of :data:`CHECKS` (the store is
    always checked: everything else needs it), as a container health check does.
    """
    from pystrument_lab.store import Store

    def wanted(name: str) -> bool:
        return only is None or name in only

    findings: list[Finding] = []
    url, store_finding = check_store(settings)
    findings.append(store_finding)
    if wanted("collector"):
        findings.append(check_collector(collector_url or settings.collector_url))
    if url is None:
        return findings
    store = Store(url, database=settings.database, timeout_ms=settings.store_timeout_ms)
    try:
        if wanted("indexes"):
            findings.append(check_indexes(store))
        if wanted("workers") or wanted("schedulers"):
            findings.extend(finding for finding in check_processes(store) if wanted(finding.check))
        if wanted("projects"):
            findings.extend(check_projects(store))
        if wanted("analysis"):
            findings.extend(check_analysis(store))
        if wanted("disk"):
            findings.append(check_disk(store, settings))
    finally:
        store.close()
    return findings
