from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.utils.sdk_guard import close_monitors, sdk_guard
from tests.utils.sink import sink

__all__ = ["sdk_guard", "sink"]


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
    close_monitors(timeout=2.0)
