from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from performance_monitor.core import monitor as monitor_module
from performance_monitor.utils import logger as sdk_logger
from pyinstrument.stack_sampler import get_stack_sampler

from tests.unit.sdk.sink import Sink


@pytest.fixture(autouse=True)
def raise_sdk_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SDK-internal errors fail the test instead of being swallowed; no profiler may leak."""
    monkeypatch.setattr(sdk_logger, "raise_internal_errors", True)
    for key in list(os.environ):
        if key.startswith("PYSTRUMENT_"):
            monkeypatch.delenv(key)
    yield
    assert not get_stack_sampler().subscribers, "a profiler was left running"


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def close_monitors() -> Iterator[None]:
    """Stop every monitor a test created, so no sender outlives its test."""
    yield
    for monitor in monitor_module.all_monitors():
        monitor.close(timeout=0.2)


@pytest.fixture
def sdk_settings(collector: Any, project: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """SDK settings pointing at the real collector, with short timers so tests run fast.

    Monitors are closed when this fixture ends, before the collector stops.
    """
    yield {
        "project_key": project["project_key"],
        "api_endpoint": collector.url,
        "sampling_rate": 1.0,
        "batch_timeout": 0.2,
        "metrics_interval": 0.3,
        "retry_backoff": 0.05,
        "retry_backoff_max": 0.5,
        "max_retries": 40,
        "app_version": "2.0.0-test",
        "git_commit": "abc1234",
        "deploy_time": "2026-11-01T00:00:00Z",
    }
    for monitor in monitor_module.all_monitors():
        monitor.close(timeout=2.0)
