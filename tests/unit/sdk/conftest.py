from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from performance_monitor.core import monitor as monitor_module
from performance_monitor.utils import logger as sdk_logger
from pyinstrument.stack_sampler import get_stack_sampler

from .sink import Sink


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
    for monitor in monitor_module.all_monitors():  # flush while the sink still listens
        monitor.close(timeout=0.5)
    server.close()


@pytest.fixture(autouse=True)
def close_monitors() -> Iterator[None]:
    """Stop every monitor a test created, so no sender outlives its test."""
    yield
    for monitor in monitor_module.all_monitors():
        monitor.close(timeout=0.2)
