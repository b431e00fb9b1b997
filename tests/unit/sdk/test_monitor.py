from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import performance_monitor
import pytest
from performance_monitor.core.monitor import Monitor
from performance_monitor.utils.config import Config

from tests.utils.sink import Sink

ROOT = Path(__file__).resolve().parents[3]


def _request(monitor: Monitor, path: str, seconds: float = 0.0) -> bool:
    state = monitor.begin("GET", path)
    assert state is not None
    if seconds:
        time.sleep(seconds)
    state.route = "/slow/<id>"
    monitor.finish(state, 200, monitor.stop_timing(state))
    return state.sampled


def test_adaptive_capture_profiles_the_next_requests_after_a_slow_one(sink: Sink) -> None:
    config = Config(
        {
            "project_key": "pk",
            "api_endpoint": sink.url,
            "sampling_rate": 0,
            "remote_config": False,
            "ai_analysis_threshold": 0.02,
            "adaptive_capture_count": 2,
        }
    )
    monitor = Monitor(config, framework="test")
    assert _request(monitor, "/slow/1") is False
    assert _request(monitor, "/slow/1", seconds=0.03) is False  # slow: arms the capture
    assert [_request(monitor, "/slow/1") for _ in range(3)] == [True, True, False]
    assert _request(monitor, "/other") is False


def test_include_patterns_and_excluded_paths(sink: Sink) -> None:
    config = Config(
        {
            "project_key": "pk",
            "api_endpoint": sink.url,
            "remote_config": False,
            "include_patterns": ["/api/"],
            "sampling_rate": 0,
            "excluded_paths": ["/api/health"],
        }
    )
    monitor = Monitor(config, framework="test")
    assert monitor.begin("GET", "/static/app.js") is None
    assert monitor.begin("GET", "/api/health") is None
    state = monitor.begin("GET", "/api/users")
    assert state is not None
    monitor.finish(state, 200, monitor.stop_timing(state))


def test_remote_disable_turns_measuring_off(sink: Sink) -> None:
    config = Config(
        {"project_key": "pk", "api_endpoint": sink.url, "remote_config": False, "sampling_rate": 0}
    )
    monitor = Monitor(config, framework="t")
    monitor.apply_remote_config({"enabled": False, "sampling_rate": 0.0})
    assert monitor.begin("GET", "/x") is None
    monitor.apply_remote_config({"enabled": True, "sampling_rate": 7})  # out of range: ignored
    assert monitor.sampling_rate == 0.0
    state = monitor.begin("GET", "/x")
    assert state is not None and not state.sampled
    monitor.finish(state, 200, monitor.stop_timing(state))
    monitor.apply_remote_config({"enabled": True, "sampling_rate": 1.0})
    state = monitor.begin("GET", "/x")
    assert state is not None and state.sampled
    monitor.finish(state, 200, monitor.stop_timing(state))


def test_queued_data_is_flushed_at_exit(sink: Sink) -> None:
    script = textwrap.dedent(
        f"""
        from performance_monitor.core.monitor import Monitor
        from performance_monitor.utils.config import Config
        config = Config({{"project_key": "pk", "api_endpoint": "{sink.url}", "sampling_rate": 1,
                          "batch_timeout": 60, "metrics_interval": 60, "remote_config": False}})
        monitor = Monitor(config, framework="script")
        state = monitor.begin("GET", "/at-exit")
        state.route = "/at-exit"
        monitor.finish(state, 200, monitor.stop_timing(state))
        """
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=30)
    assert time.monotonic() - started < 20
    assert [r["request_info"]["path"] for r in sink.records()] == ["/at-exit"]
    assert [p["count"] for p in sink.metric_points()] == [1]


def test_flush_flushes_every_monitor_even_after_one_fails(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"project_key": "pk", "api_endpoint": sink.url, "remote_config": False}
    monitors = [Monitor(Config(settings), framework="wsgi") for _ in range(3)]
    called: list[Monitor] = []

    def flush_of(monitor: Monitor) -> Any:
        real = monitor.flush

        def flush(timeout: float = 5.0) -> bool:
            called.append(monitor)
            return False if len(called) == 1 else real(timeout)  # the first one asked fails

        return flush

    for monitor in monitors:
        monkeypatch.setattr(monitor, "flush", flush_of(monitor))
        _request(monitor, "/x")
    assert performance_monitor.flush(5) is False
    assert sorted(map(id, called)) == sorted(map(id, monitors))
    assert sum(point["count"] for point in sink.metric_points()) == 2
