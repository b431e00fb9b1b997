"""A pyinstrument Profiler for one request: bounded in time and polite to other profilers."""

from __future__ import annotations

import inspect
import time
from types import FrameType
from typing import Any, Literal

from pyinstrument import Profiler
from pyinstrument.session import Session
from pyinstrument.stack_sampler import get_stack_sampler

# Requests not profiled because another profiler (e.g. the user's own) was running.
skipped_profiles = 0


class _BoundedProfiler(Profiler):
    """Drops samples after ``max_duration`` so a runaway request keeps a bounded session.

    pyinstrument has no time bound and a profiler must be stopped on the thread
    that started it, so rather than stopping from a timer we stop recording.
    """

    def __init__(self, interval: float, async_mode: Any, max_duration: float) -> None:
        super().__init__(interval=interval, async_mode=async_mode)
        self.deadline = time.monotonic() + max_duration
        self.truncated = False

    def _sampler_saw_call_stack(
        self, call_stack: Any, time_since_last_sample: float, async_state: Any
    ) -> None:
        if time.monotonic() > self.deadline:
            self.truncated = True
            return
        super()._sampler_saw_call_stack(call_stack, time_since_last_sample, async_state)


class RequestProfiler:
    """Start/stop around one request; ``start`` returns False instead of raising."""

    def __init__(
        self,
        *,
        interval: float,
        max_duration: float,
        async_mode: Literal["enabled", "disabled"] = "disabled",
    ) -> None:
        self._profiler = _BoundedProfiler(interval, async_mode, max_duration)
        self._async = async_mode != "disabled"
        self.running = False

    def start(self, caller_frame: FrameType | None = None) -> bool:
        global skipped_profiles
        # A synchronous profiler already on this thread (the user's own, say):
        # ours would bill its time to both, so leave the thread to it.
        if not self._async and get_stack_sampler().subscribers:
            skipped_profiles += 1
            return False
        try:
            self._profiler.start(
                caller_frame=caller_frame or (inspect.currentframe() or None),
                target_description="request",
            )
        except RuntimeError:
            # pyinstrument refuses a second async-aware profiler in one context.
            skipped_profiles += 1
            return False
        self.running = True
        return True

    def stop(self) -> Session | None:
        if not self.running:
            return None
        self.running = False
        return self._profiler.stop()

    @property
    def truncated(self) -> bool:
        return self._profiler.truncated
