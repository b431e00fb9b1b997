"""Schedule files: the YAML format of ``pystrument scheduler`` and cron triggers.

Format (the default ships as ``pystrument_lab/reports/default_schedule.yaml``)::

    timezone: UTC                # cron times are read in this zone
    misfire_grace_time: 3600     # s: how late a missed run may still run
    lease_seconds: 3600          # a scheduler that died mid-run frees its job after this
    jobs:
      - name: daily-summary      # unique
        cron: "0 6 * * *"        # minute hour day month weekday (crontab; 0/7 = Sunday)
        template: summary        # a notebook of notebooks/reports/, or a path
        projects: active         # every active project, or a list of names/keys
        params: {start: today-1d, end: today}   # relative to the scheduled time
      - name: cleanup
        cron: "0 2 * * *"
        task: cleanup
        params: {retention_days: 30}            # default PYSTRUMENT_RETENTION_DAYS

A six-field ``cron`` has seconds first (``"*/5 * * * * *"``). ``params`` of a
report job are ``start``, ``end``, ``report_type``; any other key is passed to
the notebook as a papermill parameter.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from pystrument_lab.errors import ParameterError

__all__ = [
    "JobSpec",
    "Schedule",
    "cron_trigger",
    "default_schedule_path",
    "latest_fire",
    "load_schedule",
]

TASKS = ("report", "cleanup")
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LOOKBACKS = [
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
]


@dataclass(frozen=True)
class JobSpec:
    name: str
    cron: str
    task: str = "report"
    template: str | None = None
    projects: str | list[str] = "active"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    jobs: list[JobSpec]
    timezone: str = "UTC"
    misfire_grace_time: int = 3600
    lease_seconds: float = 3600.0
    source: str = ""


def default_schedule_path() -> Path:
    return Path(str(resources.files("pystrument_lab.reports") / "default_schedule.yaml"))


def load_schedule(path: str | os.PathLike[str] | None = None) -> Schedule:
    """Read and check a schedule file (the packaged default when ``path`` is None)."""
    import yaml

    source = Path(path) if path is not None else default_schedule_path()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"cannot read the schedule file {source}: {exc}") from exc
    jobs = []
    for index, entry in enumerate(data.get("jobs") or []):
        name = str(entry.get("name") or f"job-{index}")
        task = str(entry.get("task") or "report")
        if task not in TASKS:
            raise ParameterError(f"{source}: job {name!r} has task {task!r}; use one of {TASKS}")
        if task == "report" and not entry.get("template"):
            raise ParameterError(f"{source}: report job {name!r} needs a template")
        projects = entry.get("projects", "active")
        if not (projects == "active" or isinstance(projects, list)):
            raise ParameterError(f"{source}: job {name!r}: projects is 'active' or a list")
        spec = JobSpec(
            name,
            str(entry.get("cron", "")),
            task,
            entry.get("template"),
            projects,
            dict(entry.get("params") or {}),
        )
        cron_trigger(spec.cron, str(data.get("timezone", "UTC")))  # fails early on a bad cron
        jobs.append(spec)
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ParameterError(f"{source}: job names must be unique, got {names}")
    return Schedule(
        jobs=jobs,
        timezone=str(data.get("timezone", "UTC")),
        misfire_grace_time=int(data.get("misfire_grace_time", 3600)),
        lease_seconds=float(data.get("lease_seconds", 3600)),
        source=str(source),
    )


def cron_trigger(expression: str, tz: str = "UTC") -> Any:
    """An APScheduler CronTrigger from crontab syntax (5 fields, or 6 with seconds first).

    APScheduler 3 numbers weekdays from Monday = 0; crontab from Sunday = 0.
    Numeric weekdays are translated to names so crontab lines mean what they say.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ParameterError(
            f"cron {expression!r} needs 5 fields (minute hour day month weekday) or 6 (seconds first)"
        )
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    weekday = re.sub(r"(?<![/\d])(\d+)", lambda m: _WEEKDAYS[int(m.group(1)) % 8], weekday)
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekday,
            timezone=tz,
        )
    except ValueError as exc:
        raise ParameterError(f"cron {expression!r} is not valid: {exc}") from exc


def latest_fire(trigger: Any, after: datetime, now: datetime) -> datetime | None:
    """The trigger's latest fire time in (after, now], or None."""
    floor = after + timedelta(microseconds=1)
    for lookback in LOOKBACKS:
        start = max(floor, now - lookback)
        last = None
        moment = trigger.get_next_fire_time(None, start)
        while moment is not None and moment <= now:
            last = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
        if last is not None or start == floor:
            return last
    return None
