"""Relative report dates, schedule files and cron triggers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pystrument_lab.errors import ParameterError
from pystrument_lab.reports import resolve_date, resolve_template
from pystrument_lab.reports.schedule import cron_trigger, latest_fire, load_schedule

NOW = datetime(2026, 11, 27, 15, 30, 12, tzinfo=timezone.utc)  # a Friday
MIDNIGHT = datetime(2026, 11, 27, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        (None, NOW),
        ("-1d", NOW - timedelta(days=1)),
        ("-12h", NOW - timedelta(hours=12)),
        ("-2w", NOW - timedelta(weeks=2)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("today", MIDNIGHT),
        ("yesterday", MIDNIGHT - timedelta(days=1)),
        ("today-7d", MIDNIGHT - timedelta(days=7)),
        ("today+6h", MIDNIGHT + timedelta(hours=6)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("2026-11-01T08:00:00Z", datetime(2026, 11, 1, 8, tzinfo=timezone.utc)),
        ("2026-11-01T10:00:00+02:00", datetime(2026, 11, 1, 8, tzinfo=timezone.utc)),
    ],
)
def test_resolve_date(text: str | None, expected: datetime) -> None:
    assert resolve_date(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["last week", "-1y", "1d", "today-", "2026-13-01"])
def test_resolve_date_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ParameterError):
        resolve_date(text, now=NOW)


def test_templates_by_name_and_path(tmp_path: Path) -> None:
    assert resolve_template("summary").name == "summary.ipynb"
    assert resolve_template("regression").name == "regression.ipynb"
    own = tmp_path / "mine.ipynb"
    own.write_text("{}")
    assert resolve_template(own) == own.resolve()
    with pytest.raises(ParameterError, match="regression"):
        resolve_template("nope")


def test_crontab_weekdays_mean_what_crontab_says() -> None:
    # APScheduler 3 counts Monday as 0; crontab counts Sunday as 0 (and 7).
    monday = cron_trigger("0 7 * * 1")
    assert monday.get_next_fire_time(None, NOW) == datetime(2026, 11, 30, 7, tzinfo=timezone.utc)
    sunday = cron_trigger("0 7 * * 0")
    assert sunday.get_next_fire_time(None, NOW) == datetime(2026, 11, 29, 7, tzinfo=timezone.utc)
    assert cron_trigger("0 7 * * 7").get_next_fire_time(None, NOW) == datetime(
        2026, 11, 29, 7, tzinfo=timezone.utc
    )
    weekdays = cron_trigger("0 9 * * 1-5")
    assert weekdays.get_next_fire_time(None, NOW) == datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
    every_other = cron_trigger("0 9 * * */2")
    assert every_other.get_next_fire_time(None, NOW) is not None


def test_six_fields_have_seconds_first() -> None:
    trigger = cron_trigger("*/20 * * * * *")
    assert trigger.get_next_fire_time(None, NOW) == NOW.replace(second=20)


@pytest.mark.parametrize("cron", ["", "* * *", "61 * * * *", "0 25 * * *"])
def test_bad_cron_is_a_parameter_error(cron: str) -> None:
    with pytest.raises(ParameterError):
        cron_trigger(cron)


def test_latest_fire() -> None:
    daily = cron_trigger("0 2 * * *")
    assert latest_fire(daily, NOW - timedelta(days=5), NOW) == MIDNIGHT + timedelta(hours=2)
    assert latest_fire(daily, MIDNIGHT + timedelta(hours=2), NOW) is None  # already run
    weekly = cron_trigger("0 7 * * mon")
    assert latest_fire(weekly, NOW - timedelta(days=30), NOW) == datetime(
        2026, 11, 23, 7, tzinfo=timezone.utc
    )
    yearly = cron_trigger("0 0 1 1 *")
    assert latest_fire(yearly, NOW - timedelta(days=400), NOW) == datetime(
        2026, 1, 1, tzinfo=timezone.utc
    )
    every_second = cron_trigger("* * * * * *")
    assert latest_fire(every_second, NOW - timedelta(days=1), NOW) == NOW


def test_default_schedule_ships_the_three_jobs() -> None:
    schedule = load_schedule()
    jobs = {job.name: job for job in schedule.jobs}
    assert set(jobs) == {"daily-summary", "weekly-regression", "cleanup"}
    assert jobs["daily-summary"].template == "summary"
    assert jobs["daily-summary"].projects == "active"
    assert jobs["weekly-regression"].template == "regression"
    assert jobs["cleanup"].task == "cleanup"
    assert jobs["cleanup"].cron == "0 2 * * *"
    assert schedule.misfire_grace_time > 0
    for job in schedule.jobs:
        resolve_date(job.params.get("start", "-1d"), now=NOW)
        resolve_date(job.params.get("end", "now"), now=NOW)


def test_schedule_file_errors_name_the_job(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text("jobs:\n  - name: nightly\n    cron: '0 2 * *'\n    template: summary\n")
    with pytest.raises(ParameterError, match="5 fields"):
        load_schedule(path)
    path.write_text("jobs:\n  - name: nightly\n    cron: '0 2 * * *'\n")
    with pytest.raises(ParameterError, match="nightly.*template"):
        load_schedule(path)
    path.write_text("jobs:\n" + "  - {name: a, cron: '0 2 * * *', task: cleanup}\n" * 2)
    with pytest.raises(ParameterError, match="unique"):
        load_schedule(path)
