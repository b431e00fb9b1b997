"""The framework version a record carries: the first installed distribution's."""

from __future__ import annotations

from importlib.metadata import version

from performance_monitor.core.record import installed_version


def test_first_installed_distribution_wins() -> None:
    assert installed_version("fastapi", "starlette") == version("fastapi")
    assert installed_version("no-such-distribution-here", "flask") == version("flask")


def test_none_when_nothing_is_installed() -> None:
    assert installed_version("no-such-distribution-here") is None
    assert installed_version() is None
