"""The report modules' old import paths still work for one release, with a warning."""

from __future__ import annotations

import importlib
import sys

import pytest

import pystrument_lab
from pystrument_lab._moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_path_warns_and_is_the_new_module(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)
    monkeypatch.delattr(pystrument_lab, old.rsplit(".", 1)[1], raising=False)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert getattr(pystrument_lab, old.rsplit(".", 1)[1]) is module


def test_old_names_reach_the_same_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "pystrument_lab.scheduler", raising=False)
    with pytest.warns(DeprecationWarning):
        from pystrument_lab.scheduler import HEARTBEAT_SECONDS, ReportScheduler
    from pystrument_lab.reports import scheduler

    assert (HEARTBEAT_SECONDS, ReportScheduler) == (30.0, scheduler.ReportScheduler)


def test_reports_package_keeps_the_report_functions() -> None:
    from pystrument_lab import reports
    from pystrument_lab.reports import runner

    assert reports.run_report is runner.run_report
    assert (
        reports.TEMPLATES_DIR.name == "reports"
        and (reports.TEMPLATES_DIR / "summary.ipynb").is_file()
    )
