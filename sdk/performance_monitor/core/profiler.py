"""A pyinstrument Profiler for one request: bounded in time and polite to other profilers."""

from __future__ import annotations

import inspect
import time
import tracemalloc
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
        # pyinstrument keeps a new list of new frame strings for every sample: on a
        # 50-frame web stack ~10 kB a sample, over 1 MB per second the request runs.
        # Under tracemalloc (memory tracking) that would count as the request's own
        # memory, so each distinct stack is then kept once and a sample costs ~0.1 kB.
        # Not done otherwise: the lookup costs about as much as taking the sample.
        self._stacks: dict[tuple[str, ...], list[str]] | None = (
            {} if tracemalloc.is_tracing() else None
        )

    def _sampler_saw_call_stack(
        self, call_stack: Any, time_since_last_sample: float, async_state: Any
    ) -> None:
        if time.monotonic() > self.deadline:
            self.truncated = True
            return
        super()._sampler_saw_call_stack(call_stack, time_since_last_sample, async_state)
        session = self._active_session
        if self._stacks is not None and session is not None and session.frame_records:
            records = session.frame_records
            stack, duration = records[-1]
            shared = self._stacks.setdefault(tuple(stack), stack)
            if shared is not stack:
                records[-1] = (shared, duration)


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
