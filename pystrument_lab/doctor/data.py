"""The doctor's checks of the data: project keys and traffic, SDK reports, analysis, disk."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pystrument_lab.doctor.findings import DAY, Finding, human_size, plural, utc_time
from pystrument_lab.settings import Settings


def check_projects(store: Any) -> list[Finding]:
    now = time.time()
    findings = []
    for unknown in store.unknown_keys(now - DAY):
        findings.append(
            Finding(
                "project key",
                "problem",
                f"the collector refused requests carrying an unknown project key "
                f"{unknown['prefix']!r} (last at {utc_time(unknown['last_seen'])}): an SDK is "
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
        findings.extend(sdk_report(label, project, now))
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


def sdk_report(label: str, project: dict[str, Any], now: float) -> list[Finding]:
    """The latest trouble an SDK process of the project reported, if within a day."""
    report = project.get("sdk_report")
    if not isinstance(report, dict) or now - float(report.get("received") or 0) > DAY:
        return []
    counts = ", ".join(
        f"{report[name]} {name}" for name in ("failed", "dropped") if report.get(name)
    )
    error = report.get("last_error")
    when = f" (at {utc_time(report['last_error_at'])})" if report.get("last_error_at") else ""
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


def check_analysis(store: Any) -> list[Finding]:
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


def check_disk(store: Any, settings: Settings) -> Finding:
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
        f"{where} uses {human_size(size)}; the last 24 h added "
        f"{plural(growth['records_since'], 'record')}"
        + (f" of {human_size(per_record)} each (with its tree)" if per_record else "")
        + f", about {human_size(daily)} of data a day"
    )
    keep = settings.retention_days
    if free is not None and daily * keep > free:
        return Finding(
            "disk",
            "problem",
            message + f", and {keep} days of it do not fit in the {human_size(free)} free",
            "lower PYSTRUMENT_RETENTION_DAYS or the sampling rate, or move PYSTRUMENT_HOME",
            {**data, "free": free},
        )
    return Finding("disk", "ok", message, data={**data, "free": free})
