"""The dashboard command's access rule, the SDK snippets and the trend charts."""

from __future__ import annotations

import argparse
import importlib

import pytest

from panel_apps.cli import add_commands, is_loopback, server_options
from panel_apps.snippets import FRAMEWORKS, sdk_snippet
from pystrument_lab.widgets.charts import (
    error_rate_chart,
    latency_chart,
    sparkline,
    throughput_chart,
)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_runs_open(address: str) -> None:
    assert is_loopback(address)
    assert "auth_provider" not in server_options(address, 3000)


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", "::", "dashboard.example"])
def test_any_other_address_requires_the_admin_token(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pystrument_lab.settings import get_settings

    monkeypatch.setenv("PYSTRUMENT_ADMIN_TOKEN", "secret-token")
    get_settings.cache_clear()
    try:
        options = server_options(address, 3000)
    finally:
        get_settings.cache_clear()
    assert not is_loopback(address)
    login = options["auth_provider"].login_handler
    assert login.token == "secret-token" and len(options["cookie_secret"]) == 64
    assert "127.0.0.1:3000" in options["websocket_origin"]


def test_dashboard_command_is_registered() -> None:
    from pystrument_lab.cli import build_parser

    args = build_parser().parse_args(["dashboard", "--port", "3100", "--address", "0.0.0.0"])
    assert (args.port, args.address) == (3100, "0.0.0.0")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_snippets_use_the_sdks_real_entry_points(framework: str) -> None:
    code = sdk_snippet(framework, "pk_test", endpoint="http://127.0.0.1:8000", sampling_rate=0.5)
    compile(code, f"<{framework} snippet>", "exec")
    assert "pk_test" in code and "0.5" in code
    if framework == "django":
        module, _, name = "performance_monitor.django.PerformanceMiddleware".rpartition(".")
    else:
        module, name = f"performance_monitor.{framework}", "PerformanceMiddleware"
        assert f"from {module} import {name}" in code
    assert hasattr(importlib.import_module(module), name)


def test_django_snippet_keys_are_sdk_config_keys() -> None:
    from performance_monitor.utils.config import Config

    namespace: dict = {}
    exec(sdk_snippet("django", "pk_test", endpoint="http://127.0.0.1:8000"), namespace)
    config = Config.from_django_settings(namespace["PERFORMANCE_MONITOR"])
    assert (config.project_key, config.api_endpoint, config.sampling_rate) == (
        "pk_test",
        "http://127.0.0.1:8000",
        0.3,
    )


def test_charts_draw_the_trend_columns() -> None:
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trends = {
        "bucket_start": [start, start + timedelta(minutes=1)],
        "count": [10, 0], "errors": [1, 0], "error_rate": [0.1, 0.0], "throughput": [10 / 60, 0.0],
        "p50": [0.01, None], "p95": [0.02, None], "p99": [0.03, None],
    }  # fmt: skip
    latency = latency_chart(trends)
    lines = {r.glyph.y: r.data_source.data[r.glyph.y] for r in latency.renderers}
    assert lines["p95"][0] == pytest.approx(20.0) and lines["p50"][1] != lines["p50"][1]  # NaN gap
    assert throughput_chart(trends).renderers[0].data_source.data["throughput"] == [10.0, 0.0]
    assert error_rate_chart(trends).renderers[0].data_source.data["error_rate"] == [
        pytest.approx(10.0),
        0.0,
    ]
    assert list(sparkline(trends).renderers[0].data_source.data["y"]) == [10.0, 0.0]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_launcher_snippet_sets_sdk_config_through_the_environment(framework: str) -> None:
    from performance_monitor.autoinstrument import config_problem
    from performance_monitor.utils.config import Config

    from panel_apps.snippets import launcher_snippet, snippet_tabs

    text = launcher_snippet(
        framework, "pk_test", endpoint="http://127.0.0.1:8000", sampling_rate=0.5
    )
    environ = dict(
        line.removeprefix("export ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("export ")
    )
    config, problem = config_problem(lambda: Config(environ=environ))
    assert problem is None and config is not None
    assert (config.project_key, config.api_endpoint, config.sampling_rate) == (
        "pk_test",
        "http://127.0.0.1:8000",
        0.5,
    )
    assert "pystrument-run " in text
    tabs = snippet_tabs("pk_test", framework=framework, sampling_rate=0.5)
    assert tabs._names[-1] == "No code change"
    assert "pk_test" in tabs[-1].value and "pystrument-run" in tabs[-1].value
