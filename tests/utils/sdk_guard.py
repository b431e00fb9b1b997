"""The guard around every test that runs the SDK in its own process.

SDK-internal errors are raised instead of swallowed, so they fail the test;
no ``PYSTRUMENT_*`` variable of the machine leaks into the SDK's settings;
every monitor a test created is closed at its end, so no sender outlives
it; and no profiler may be left running.

Test folders that run the SDK use the autouse fixture by importing it into
their conftest (``from tests.utils.sdk_guard import sdk_guard``); a fixture
with a wider scope wraps its work in :func:`guarded_sdk`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from performance_monitor.core import monitor as monitor_module
from performance_monitor.utils import logger as sdk_logger
from pyinstrument.stack_sampler import get_stack_sampler


def close_monitors(timeout: float) -> None:
    """Flush (within ``timeout`` each) and stop every monitor of the process."""
    for monitor in monitor_module.all_monitors():
        monitor.close(timeout=timeout)


@contextmanager
def guarded_sdk(*, close_timeout: float = 0.2) -> Iterator[None]:
    """Run the block under the guard; ``close_timeout`` bounds each monitor's last flush."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdk_logger, "raise_internal_errors", True)
        for name in list(os.environ):
            if name.startswith("PYSTRUMENT_"):
                patch.delenv(name)
        yield
        close_monitors(close_timeout)
    assert not get_stack_sampler().subscribers, "a profiler was left running"


@pytest.fixture(autouse=True)
def sdk_guard() -> Iterator[None]:
    with guarded_sdk():
        yield
