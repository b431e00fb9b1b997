"""``pystrument doctor``: what is wrong with this installation, in plain words.

Each check returns :class:`Finding` objects: ``ok``, ``warning`` (worth a
look, nothing is lost) or ``problem`` (data or work is being lost, or a
service is missing); the command exits 1 when there is a problem. Checks
read the store only through :class:`~pystrument_lab.store.Store` and never
start anything: a doctor that started the embedded store would hide that it
was down.
"""

from __future__ import annotations

import shutil
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pystrument_lab.settings import Settings

__all__ = ["Finding", "diagnose", "render"]

Status = Literal["ok", "warning", "problem"]
DAY = 86_400.0
#: A process whose heartbeat is older than this many intervals is taken for dead.
MISSED_BEATS = 3


@dataclass
class Finding:
    check: str
    status: Status
    message: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def redact_url(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


#: The checks, in the order they run and print; ``--check`` names them.
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
    url, store_finding = _check_store(settings)
    findings.append(store_finding)
    if wanted("collector"):
        findings.append(_check_collector(collector_url or settings.collector_url))
    if url is None:
        return findings
    store = Store(url, database=settings.database, timeout_ms=settings.store_timeout_ms)
    try:
        if wanted("indexes"):
            findings.append(_check_indexes(store))
        if wanted("workers") or wanted("schedulers"):
            findings.extend(finding for finding in _check_processes(store) if wanted(finding.check))
        if wanted("projects"):
            findings.extend(_check_projects(store))
        if wanted("analysis"):
            findings.extend(_check_analysis(store))
        if wanted("disk"):
            findings.append(_check_disk(store, settings))
    finally:
        store.close()
    return findings


# -- store and services --------------------------------------------------------


def _check_store(settings: Settings) -> tuple[str | None, Finding]:
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


def _check_collector(url: str) -> Finding:
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


def _check_indexes(store: Any) -> Finding:
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


def _check_processes(store: Any) -> list[Finding]:
    from pystrument_lab.analysis.jobs import queue_stats
    from pystrument_lab.scheduler import HEARTBEAT_SECONDS

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
                f"{_count(len(workers), 'analysis worker')} alive",
                data={"workers": sorted(workers), "pending": pending},
            )
        )
    else:
        findings.append(
            Finding(
                "workers",
                "problem",
                f"no analysis worker is alive (none has sent a heartbeat in the last {horizon:.0f} s)"
                f"; {_count(pending, 'analysis', 'analyses')} {'is' if pending == 1 else 'are'} waiting",
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
                f"{_count(len(schedulers), 'scheduler')} alive",
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


# -- data ----------------------------------------------------------------------


def _check_projects(store: Any) -> list[Finding]:
    now = time.time()
    findings = []
    for unknown in store.unknown_keys(now - DAY):
        findings.append(
            Finding(
                "project key",
                "problem",
                f"the collector refused requests carrying an unknown project key "
                f"{unknown['prefix']!r} (last at {_at(unknown['last_seen'])}): an SDK is "
                "configured with a wrong key",
                "copy the key from `pystrument projects list` into the SDK's PROJECT_KEY "
                "(PYSTRUMENT_PROJECT_KEY); `python -m performance_monitor check` confirms it",
                {"prefix": unknown["prefix"], "last_seen": unknown["last_seen"]},
            )
        )
    projects, _ = store.list_projects(page=1, size=1000, status="active")
    since = datetime.now(timezone.utc) - timedelta(seconds=DAY)
    for project in projects:
        name, key = project["name"], project["project_key"]
        config = project.get("config") or {}
        label = f"project {name!r}"
        if not config.get("enabled", True):
            findings.append(
                Finding(
                    "project",
                    "warning",
                    f"{label} is disabled: its SDKs send nothing",
                    "enable it: PUT /api/v1/projects/{key} with enabled=true",
                    {"project": name},
                )
            )
            continue
        findings.extend(_sdk_report(label, project, now))
        last_record = store.last_record_time(key)
        last_metric = store.last_metric_time(key)
        latest = max((t for t in (last_record, last_metric) if t is not None), default=None)
        data = {
            "project": name,
            "last_record": last_record,
            "last_metrics": last_metric,
            "sampling_rate": config.get("sampling_rate"),
        }
        if latest is None or latest < since:
            when = "ever" if latest is None else f"since {latest:%Y-%m-%d %H:%M} UTC"
            findings.append(
                Finding(
                    "project",
                    "warning",
                    f"{label} has received nothing {when}",
                    "check the app's SDK settings (PROJECT_KEY, API_ENDPOINT, ENABLED, "
                    "EXCLUDED_PATHS) and run `python -m performance_monitor check` where the "
                    "app runs: it sends a test record and shows the collector's answer",
                    data,
                )
            )
        elif float(config.get("sampling_rate", 0.3) or 0) == 0:
            findings.append(
                Finding(
                    "project",
                    "warning",
                    f"{label} receives metrics but samples 0 % of requests: no call trees",
                    "raise its sampling rate (dashboard, projects page)",
                    data,
                )
            )
        elif last_record is None or last_record < since:
            findings.append(
                Finding(
                    "project",
                    "warning",
                    f"{label} receives metrics but no sampled record in the last 24 h",
                    "the SDK's sampling_rate may be 0 or its EXCLUDED_PATHS cover the traffic",
                    data,
                )
            )
        else:
            findings.append(
                Finding(
                    "project", "ok", f"{label} receives data (last {latest:%H:%M} UTC)", None, data
                )
            )
    if not projects:
        findings.append(
            Finding(
                "project",
                "warning",
                "no active project: nothing can send data",
                "create one with `pystrument projects create NAME --framework flask`",
            )
        )
    return findings


def _sdk_report(label: str, project: dict[str, Any], now: float) -> list[Finding]:
    """The latest trouble an SDK process of the project reported, if within a day."""
    report = project.get("sdk_report")
    if not isinstance(report, dict) or now - float(report.get("received") or 0) > DAY:
        return []
    counts = ", ".join(
        f"{report[name]} {name}" for name in ("failed", "dropped") if report.get(name)
    )
    error = report.get("last_error")
    when = f" (at {_at(report['last_error_at'])})" if report.get("last_error_at") else ""
    detail = "; ".join(
        part for part in (counts, f"last error{when}: {error}" if error else "") if part
    )
    return [
        Finding(
            "sdk",
            "warning",
            f"an SDK of {label} reported trouble sending: {detail}",
            "the error says what the collector refused; `python -m performance_monitor check` "
            "where the app runs shows the collector's answer to a test record",
            {"project": project["name"], **report},
        )
    ]


def _check_analysis(store: Any) -> list[Finding]:
    from pystrument_lab.analysis.config import RULES, load_config
    from pystrument_lab.errors import PystrumentError

    findings = []
    try:
        config = load_config()
        name, service = config.service(None)
    except PystrumentError as exc:
        return [
            Finding(
                "analysis",
                "problem",
                f"the AI configuration is invalid: {exc.message}",
                "fix the file named by PYSTRUMENT_AI_CONFIG",
            )
        ]
    if service is None:
        findings.append(
            Finding(
                "analysis",
                "ok",
                "analysis uses the rule engine (no AI service configured)",
                data={"service": RULES},
            )
        )
    elif service.provider in ("openai", "anthropic") and not service.resolved_key():
        findings.append(
            Finding(
                "analysis",
                "problem",
                f"the default AI service {name!r} ({service.provider}) has no API key",
                f"set {service.api_key_env or 'its api_key_env variable'} for the workers",
                {"service": name},
            )
        )
    else:
        findings.append(
            Finding(
                "analysis",
                "ok",
                f"analysis uses {name!r} ({service.provider}, {service.model})",
                data={"service": name},
            )
        )
    outcomes = store.analysis_outcomes(time.time() - DAY)
    failure = outcomes["latest_failure"]
    if failure is not None:
        reason = (failure.get("error") or {}).get("message") or "no reason recorded"
        latest_failed = outcomes["latest"] is not None and outcomes["latest"]["id"] == failure["id"]
        findings.append(
            Finding(
                "analysis runs",
                "problem" if latest_failed else "warning",
                f"{outcomes['failed']} of {outcomes['failed'] + outcomes['completed']} analyses "
                f"in the last 24 h failed; the latest failure: {reason}",
                "see the reason above; `GET /api/v1/analysis/config/ai-services` lists the "
                "services the workers use",
                {
                    "failed": outcomes["failed"],
                    "completed": outcomes["completed"],
                    "reason": reason,
                },
            )
        )
    return findings


def _check_disk(store: Any, settings: Settings) -> Finding:
    growth = store.record_growth(datetime.now(timezone.utc) - timedelta(seconds=DAY))
    size = growth["storage_bytes"]
    where = "the store"
    free: int | None = None
    if not settings.mongodb_url:
        data_dir = settings.home / "store" / "data"
        size = sum(path.stat().st_size for path in Path(data_dir).glob("**/*") if path.is_file())
        free = shutil.disk_usage(data_dir).free
        where = f"the embedded store ({data_dir})"
    per_record = growth["record_bytes"] / growth["records"] if growth["records"] else 0.0
    daily = per_record * growth["records_since"]
    data = {
        "bytes": size,
        "bytes_per_record": round(per_record),
        "bytes_per_day": round(daily),
        "records_last_day": growth["records_since"],
    }
    message = (
        f"{where} uses {_size(size)}; the last 24 h added "
        f"{_count(growth['records_since'], 'record')}"
        + (f" of {_size(per_record)} each (with its tree)" if per_record else "")
        + f", about {_size(daily)} of data a day"
    )
    keep = settings.retention_days
    if free is not None and daily * keep > free:
        return Finding(
            "disk",
            "problem",
            message + f", and {keep} days of it do not fit in the {_size(free)} free",
            "lower PYSTRUMENT_RETENTION_DAYS or the sampling rate, or move PYSTRUMENT_HOME",
            {**data, "free": free},
        )
    return Finding("disk", "ok", message, data={**data, "free": free})


def _count(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else plural or word + 's'}"


def _size(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- output --------------------------------------------------------------------

_MARKS = {"ok": "ok     ", "warning": "WARNING", "problem": "PROBLEM"}


def render(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{_MARKS[finding.status]}  {finding.check}: {finding.message}")
        if finding.fix and finding.status != "ok":
            lines.append(f"         fix: {finding.fix}")
    problems = sum(finding.status == "problem" for finding in findings)
    warnings = sum(finding.status == "warning" for finding in findings)
    lines.append(
        "all good."
        if not problems and not warnings
        else f"{_count(problems, 'problem')}, {_count(warnings, 'warning')}."
    )
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [asdict(finding) for finding in findings]
