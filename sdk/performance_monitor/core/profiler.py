"""A pyinstrument Profiler for one request: bounded in time and polite to other profilers."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from time import perf_counter
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from pyinstrument import Profiler
from pyinstrument.frame import AWAIT_FRAME_IDENTIFIER
from pyinstrument.low_level.stat_profile import get_frame_info
from pyinstrument.session import Session
from pyinstrument.stack_sampler import get_stack_sampler

from ..utils.logger import capture_internal_exceptions
from .schedstat import thread_waits, waits_since

if TYPE_CHECKING:
    from .request import RequestState

# Requests not profiled because another profiler (e.g. the user's own) was running.
skipped_profiles = 0

#: When samples cost more than this share of the sampling interval (see
#: :meth:`_BoundedProfiler._pace`), the interval grows until they cost
#: :data:`SAMPLE_SHARE` of it.
MAX_SAMPLE_SHARE = 0.25
SAMPLE_SHARE = 0.1
#: How many samples in a row must cost more before the interval grows (one
#: sample can be slow only because the thread was preempted while taking it).
COSTLY_SAMPLES = 3
#: The interval never grows past this.
MAX_INTERVAL = 0.1


def _identifier(frame_info: str) -> str:
    return frame_info.split("\x01", 1)[0]


class _BoundedProfiler(Profiler):
    """Drops samples after ``max_duration`` so a runaway request keeps a bounded session.

    pyinstrument has no time bound and a profiler must be stopped on the thread
    that started it, so rather than stopping from a timer we stop recording.

    In async mode it also keeps every sample on the request's own task
    (:meth:`bind_task`). pyinstrument tells samples apart by the context they
    run in, but the event loop runs callbacks in *copies* of the request's
    context: the wake-up of ``asyncio.sleep``, a transport's write callback,
    tasks the request spawned. Under uvloop, whose loop is not Python, the
    sample covering a whole idle wait is such a callback, taken "in context"
    with only the loop's frames. And a context change that did not look like an
    await leaves pyinstrument recording the *next* context's frames, another
    request's included. Such samples are credited to the coroutines the
    request's task is awaiting, ending in ``[await]`` as pyinstrument's async
    mode does; a task the request spawned keeps its own frames below them.
    """

    def __init__(self, interval: float, async_mode: Any, max_duration: float) -> None:
        super().__init__(interval=interval, async_mode=async_mode)
        self.deadline = time.monotonic() + max_duration
        self.truncated = False
        self.started = math.inf  # perf_counter() once started: the clock of the sampler
        self._task: asyncio.Task[Any] | None = None
        self._task_thread: int | None = None  # the thread running the task's loop
        self._task_prefix: list[str] = []  # the frames above the task's coroutine
        self._anchor_depth = 0
        self._anchor = ""
        self._last_awaiting: list[str] = []
        # pyinstrument keeps a new list of new frame strings for every sample: on a
        # 50-frame web stack ~10 kB a sample, over 1 MB per second the request runs.
        # Under tracemalloc (memory tracking) that would count as the request's own
        # memory, so each distinct stack is then kept once and a sample costs ~0.1 kB.
        # Not done otherwise: the lookup costs about as much as taking the sample.
        # Decided per sample: tracing may start after the profiler (memory is
        # measured from inside the request it profiles).
        self._stacks: dict[tuple[str, ...], list[str]] = {}
        self._sampler: Any = None  # the thread's pyinstrument StackSampler, once started
        self._pace_interval = interval
        self._costly: list[float] = []
        # When the last sample ended, by perf_counter() and by the thread's CPU clock.
        self._paced_at = 0.0
        self._paced_cpu = 0.0
        self._retired: list[Any] = []  # profiler states replaced by _pace, kept alive

    def bind_task(self, caller_frame: FrameType) -> None:
        """Tie the session to the asyncio task running ``caller_frame`` (just started)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return  # no running event loop: nothing to tell apart
        session = self._active_session
        top = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
        if session is None or top is None:
            return
        below = 0
        frame: FrameType | None = caller_frame
        while frame is not None and frame is not top:
            below, frame = below + 1, frame.f_back
        stack = session.start_call_stack
        if frame is None or below >= len(stack):
            return
        self._task = task
        self._task_thread = threading.get_ident()
        self._task_prefix = stack[: len(stack) - 1 - below]
        self._anchor_depth = len(stack) - 1
        self._anchor = _identifier(stack[-1])
        self._last_awaiting = [*stack]  # the request's frame itself, until it first awaits

    def _sampler_saw_call_stack(
        self, call_stack: Any, time_since_last_sample: float, async_state: Any
    ) -> None:
        sampler = self._sampler
        # pyinstrument's sampler read its clock just before building this stack.
        taken_at = sampler.last_profile_time + time_since_last_sample if sampler else None
        if time.monotonic() > self.deadline:
            self.truncated = True
            return
        # The thread's sampler may have been running for another request since
        # its last sample: bill the first one only from when we started.
        now = perf_counter()
        time_since_last_sample = max(0.0, min(time_since_last_sample, now - self.started))
        if self._task is not None and async_state is not None:
            try:
                stack = self._on_task(call_stack, async_state)
            except Exception:  # never raise into the profiled code
                stack = None
            if stack is not None:
                call_stack, async_state = stack, None
        super()._sampler_saw_call_stack(call_stack, time_since_last_sample, async_state)
        session = self._active_session
        if session is not None and session.frame_records and tracemalloc.is_tracing():
            records = session.frame_records
            sampled, duration = records[-1]
            shared = self._stacks.setdefault(tuple(sampled), sampled)
            if shared is not sampled:
                records[-1] = (shared, duration)
        if taken_at is not None:
            try:
                done, cpu = perf_counter(), time.thread_time()
                # Time off the CPU since the last sample ended (preempted on a
                # loaded machine, or waiting in the event loop) is no cost of
                # this sample: what it took beyond that is what it cost.
                off_cpu = (done - self._paced_at) - (cpu - self._paced_cpu)
                self._paced_at, self._paced_cpu = done, cpu
                self._pace(done - taken_at - max(0.0, off_cpu))
            except Exception:  # never raise into the profiled code
                self._sampler = None

    def _pace(self, cost: float) -> None:
        """Lengthen the sampling interval when samples cost more than their share of it.

        pyinstrument samples on the first call or return after the interval
        has passed since the previous sample *began*. A sample builds one
        string per frame on the stack; when building it takes longer than
        the interval (a deep stack, or any stack under tracemalloc, which
        walks the whole stack on each of those allocations), every call and
        return samples again and the request does little but sample (100
        calls 150 frames deep under ``track_memory``: 4.4 s instead of 16 ms).
        After :data:`COSTLY_SAMPLES` samples in a row costing more than
        :data:`MAX_SAMPLE_SHARE` of the interval, the interval becomes the
        cheapest of them divided by :data:`SAMPLE_SHARE` (at most
        :data:`MAX_INTERVAL`): samples then take about that share of the
        request's time. ``cost`` leaves out the time the thread was off the CPU
        meanwhile: on a loaded machine a preempted sample takes milliseconds of
        wall time and none of the thread's, and a longer interval would then
        drop short functions from the tree. (pyinstrument's own cost at 1 ms, ~3-5 % on a web
        stack and ~20 % 150 frames down without tracemalloc, is left as is.)
        Samples keep their measured durations, so the tree's times stay
        right; it has fewer samples. Only ever lengthened, for this session.
        """
        if cost <= self._pace_interval * MAX_SAMPLE_SHARE:
            self._costly.clear()
            return
        self._costly.append(cost)
        if len(self._costly) < COSTLY_SAMPLES:
            return
        interval = min(MAX_INTERVAL, min(self._costly) / SAMPLE_SHARE)
        self._costly.clear()
        if interval <= self._pace_interval:
            return
        sampler = self._sampler
        target = self._sampler_saw_call_stack
        for subscriber in sampler.subscribers:
            if subscriber.target == target:
                subscriber.desired_interval = interval
                self._pace_interval = interval
                # Restarts the sampler at the subscribers' shortest interval (a
                # restart also times the next sample from now, not from this
                # sample's start). The restart installs a new C profiler state and
                # releases the one whose callback is running now, which CPython
                # does not hold while it calls it: kept here until the session
                # ends, it is never freed under its own callback (that crashed).
                self._retired.append(sys.getprofile())
                sampler._update()
                return

    def _on_task(self, call_stack: list[str], async_state: Any) -> list[str] | None:
        """The sample's stack on the request's task, or None when pyinstrument's is right."""
        state = async_state.state
        if state == "in_context":
            if self._through_request(call_stack):
                return None  # the request's own code
            current = asyncio.current_task()
            if current is not None and current is not self._task:
                own = _task_frames(current, call_stack)
                if own:
                    return self._awaiting() + own
        elif state == "out_of_context_awaited" and self._through_request(async_state.info):
            self._last_awaiting = async_state.info  # for the sample that resumes the task
            return None  # pyinstrument saw the request's own await
        return [*self._awaiting(), AWAIT_FRAME_IDENTIFIER]

    def _through_request(self, stack: list[str]) -> bool:
        depth = self._anchor_depth
        return len(stack) > depth and _identifier(stack[depth]) == self._anchor

    def _awaiting(self) -> list[str]:
        """The request task's stack as it awaits: each coroutine down the ``await`` chain.

        While the task is being resumed its outer coroutines are running and
        the chain is cut there; the last complete chain stands in for it.
        """
        stack = list(self._task_prefix)
        awaitable = self._task.get_coro() if self._task is not None else None
        while awaitable is not None:
            frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
            if frame is None:
                break  # a future, or a C awaitable
            stack.append(get_frame_info(frame))
            awaitable = getattr(awaitable, "cr_await", None) or getattr(
                awaitable, "gi_yieldfrom", None
            )
        if self._through_request(stack):
            self._last_awaiting = stack
        return self._last_awaiting or stack


def _task_frames(task: asyncio.Task[Any], call_stack: list[str]) -> list[str]:
    """The part of ``call_stack`` from ``task``'s coroutine down (empty if not on it)."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    if frame is None:
        return []
    wanted = _identifier(get_frame_info(frame))
    for position, info in enumerate(call_stack):
        if _identifier(info) == wanted:
            return call_stack[position:]
    return []


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
        # Set first: a sample taken while pyinstrument starts (the thread's
        # sampler may be running for another request) is billed from here.
        self._profiler.started = perf_counter()
        self._profiler._paced_at, self._profiler._paced_cpu = perf_counter(), time.thread_time()
        try:
            self._profiler.start(
                caller_frame=caller_frame or inspect.currentframe(), target_description="request"
            )
        except RuntimeError:
            # pyinstrument refuses a second async-aware profiler in one context.
            skipped_profiles += 1
            return False
        self.running = True
        sampler = get_stack_sampler()
        if sampler.timer_func is None:  # its clock is then perf_counter, as ours
            self._profiler._sampler = sampler
        if self._async and caller_frame is not None:
            self._profiler.bind_task(caller_frame)
            # Samples taken while pyinstrument started (the thread's sampler may be
            # running for another request) saw the event loop, not this request:
            # their time is the start's own, in the frame that started the profiler.
            session = self._profiler._active_session
            if session is not None and session.start_call_stack:
                records = session.frame_records
                for index, (_, duration) in enumerate(records):
                    records[index] = (list(session.start_call_stack), duration)
        return True

    def stop(self, at: float | None = None) -> Session | None:
        """The session, timed from :meth:`start` to ``at`` (a ``perf_counter()``; else now).

        Samples taken after that time (while stopping, or after the request's
        clock stopped: a GC pause or a preempted thread in between) are cut
        back to it, so the session never outlasts the request it profiles.
        pyinstrument samples on the profiled thread's own calls and takes none
        at ``stop``: the time after the last sample (the thread preempted, or
        blocked in C, as the response went out) is billed to the frame the
        session started in, so the session covers the request to its end.
        """
        if not self.running:
            return None
        self.running = False
        end = perf_counter() if at is None else at
        profiler = self._profiler
        session = profiler.stop()
        records = session.frame_records
        # Sample durations come from the sampler's clock; read against the
        # request's span, not against when each sample was recorded.
        excess = sum(duration for _, duration in records) - (end - profiler.started)
        while excess > 0 and records:
            stack, duration = records[-1]
            if duration > excess:
                records[-1] = (stack, duration - excess)
                break
            records.pop()
            excess -= duration
        if excess < 0 and not profiler.truncated and session.start_call_stack:
            records.append((list(session.start_call_stack), -excess))
        return session

    @property
    def started(self) -> float:
        """The ``perf_counter()`` the session starts at (once started)."""
        return self._profiler.started

    @property
    def truncated(self) -> bool:
        return self._profiler.truncated

    @property
    def task(self) -> tuple[asyncio.Task[Any], int | None] | None:
        """The request's asyncio task and its loop's thread (async mode, once started), else None."""
        profiler = self._profiler
        return None if profiler._task is None else (profiler._task, profiler._task_thread)

    @property
    def interval(self) -> float:
        """The sampling interval now (longer than asked when samples cost too much)."""
        return self._profiler._pace_interval


def timed_in_thread(func: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``func`` adding what the worker thread that runs it spent to ``spent``.

    ``spent`` is ``[cpu seconds, run-queue seconds, voluntary switches]``: the
    worker's share of the request's ``cpu_time``, ``run_queue_time`` and
    ``context_switches`` (the thread that handed the work over only awaited it).
    """

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        waits = thread_waits()
        try:
            return func(*args, **kwargs)
        finally:
            spent[0] += time.thread_time() - started
            since = waits_since(waits)
            if since is not None:
                spent[1] += since[0]
                spent[2] += since[1]

    return run


def add_thread_time(state: RequestState, spent: list[float]) -> None:
    """Add a worker thread's ``spent`` (see :func:`timed_in_thread`) to ``state``.

    Called on the thread that awaited the worker, so the worker never writes
    to the state.
    """
    state.thread_cpu += spent[0]
    state.thread_run_queue += spent[1]
    state.thread_switches += int(spent[2])


def profiled_in_thread(func: Callable[..., Any], state: RequestState) -> Callable[..., Any]:
    """``func`` run under a profiler of its own in the worker thread that calls it.

    pyinstrument samples one thread: the sync code a request hands to a worker
    thread shows as ``[await]`` in its event loop's session. The worker's
    session (bounded by what is left of the request's deadline) is appended
    to ``state.thread_sessions``, grafted where the request awaited it.
    """
    profiler = state.profiler
    assert profiler is not None
    interval = profiler._profiler.interval
    deadline_left = max(0.001, profiler._profiler.deadline - time.monotonic())

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        thread_profiler = RequestProfiler(interval=interval, max_duration=deadline_left)
        started = thread_profiler.start(caller_frame=sys._getframe())
        try:
            return func(*args, **kwargs)
        finally:
            if started:
                with capture_internal_exceptions():
                    session = thread_profiler.stop()
                    if session is not None:
                        state.thread_sessions.append(session)

    return run
