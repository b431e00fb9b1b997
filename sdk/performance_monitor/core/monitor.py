"""The per-app runtime: decides sampling, times requests and hands data to the sender.

Framework integrations decide sampling once with :meth:`Monitor.decide` and
drive a :class:`~.lifecycle.MonitoredRequest`, which calls :meth:`Monitor.begin`
for a sampled request and :meth:`Monitor.finish` (sampled) or
:meth:`Monitor.count` (unsampled) at its end. For an unsampled request that is
a random draw, a small object and an aggregate update.
"""

from __future__ import annotations

import os
import random
import time
import weakref
from types import FrameType
from typing import Any, Literal

from ..utils.config import Config
from ..utils.logger import capture_internal_exceptions, internal_error, logger
from .aggregates import EndpointAggregates
from .exceptions import exception_info, exception_type
from .lifecycle import UNMATCHED_ROUTE
from .memory import finish_memory, start_memory
from .profiler import RequestProfiler
from .record import CapturedRequest, detect_git_commit, environment_info, iso
from .request import RequestState
from .schedstat import waits_since
from .sender import Sender
from .statements import statements_summary
from .trace_context import span_id_of, trace_id_of

#: How long a flush waits for responses the server is still finishing (seconds).
FINISHING_WAIT = 1.0
_ADAPTIVE_PATHS_LIMIT = 1024
_monitors: weakref.WeakSet[Monitor] = weakref.WeakSet()
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


class Monitor:
    def __init__(
        self,
        config: Config,
        *,
        framework: str,
        framework_version: str | None = None,
        async_mode: Literal["enabled", "disabled"] = "disabled",
    ) -> None:
        self.config = config
        self.framework = framework
        self.async_mode = async_mode
        self.active = config.disabled_reason is None
        self.sampling_rate = config.sampling_rate
        self.remote_enabled = True
        # active and not switched off remotely: the one flag the hot path reads.
        self.measuring = self.active
        self._excluded = tuple(config.excluded_paths)
        self._included = tuple(config.include_patterns)
        self._filtered = bool(self._excluded or self._included)
        self._random = random.random
        # A request slower than this arms adaptive capture (never, when that is off).
        self._adaptive_after = (
            config.ai_analysis_threshold if config.adaptive_capture_count else float("inf")
        )
        self._adaptive: dict[str, int] = {}
        self._adaptive_paths: dict[str, str] = {}
        self.aggregates = EndpointAggregates(config.app_version)
        # Weak references to responses handed to the server whose request is not
        # counted yet (see flush); one the server drops unclosed leaves by itself.
        self.finishing: set[weakref.ref[Any]] = set()
        self.forget_finishing = self.finishing.discard
        self.sender: Sender | None = None
        # False in a new (or forked) process until the sender thread runs there.
        self.sender_started = False
        if not self.active:
            _warn_once(
                f"performance_monitor is off for this {framework} app: {config.disabled_reason}"
            )
            return
        self.version_info = {
            "app_version": config.app_version or "unknown",
            "git_commit": config.git_commit or detect_git_commit() or "",
            "deploy_time": config.deploy_time or iso(time.time()),
        }
        self.environment = environment_info(framework, framework_version)
        self.sender = Sender(config, self.aggregates, on_remote_config=self.apply_remote_config)
        self._start_sender()
        _monitors.add(self)

    # -- configuration ---------------------------------------------------------------

    def apply_remote_config(self, data: dict[str, Any]) -> None:
        """Take ``enabled``/``sampling_rate`` from ``GET /api/v1/sdk/config``."""
        if isinstance(data.get("enabled"), bool):
            self.remote_enabled = data["enabled"]
            self.measuring = self.active and self.remote_enabled
        rate = data.get("sampling_rate")
        if isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0:
            if rate != self.sampling_rate:
                logger.info("performance_monitor: sampling rate is now %s (remote config)", rate)
            self.sampling_rate = float(rate)

    def is_excluded(self, path: str) -> bool:
        if self._excluded and path.startswith(self._excluded):
            return True
        return bool(self._included) and not any(p in path for p in self._included)

    # -- the request path --------------------------------------------------------------

    def decide(self, path: str) -> bool | None:
        """None when the request is not measured, else whether it is sampled (profiled).

        The integrations' hot path: an unsampled request then only needs
        :meth:`count` at its end, without a :class:`RequestState`.
        """
        if not self.measuring or (self._filtered and self.is_excluded(path)):
            return None
        if self._random() < self.sampling_rate:
            return True
        return bool(self._adaptive) and self._take_adaptive(path)

    def begin(
        self,
        method: str,
        path: str,
        *,
        sampled: bool | None = None,
        caller_frame: FrameType | None = None,
        async_mode: Literal["enabled", "disabled"] | None = None,
    ) -> RequestState | None:
        """State for a new request, or None when it is not monitored.

        ``sampled`` is the integration's :meth:`decide` for this request; when
        given, nothing is drawn again (an adaptive-capture slot is spent once).
        ``async_mode`` overrides the monitor's for this request (Django serves
        both sync and async requests through one monitor).
        """
        if sampled is None:
            sampled = self.decide(path)
            if sampled is None:
                return None
        state = RequestState(method, path, sampled)
        if sampled:
            try:
                self._start_sampled(state, caller_frame, async_mode or self.async_mode)
            except Exception as error:
                internal_error(error)
        return state

    def _start_sampled(
        self,
        state: RequestState,
        caller_frame: FrameType | None,
        async_mode: Literal["enabled", "disabled"],
    ) -> None:
        config = self.config
        state.track_sql = config.track_sql
        state.track_memory = config.track_memory
        state.slow_query_threshold = config.slow_query_threshold
        if state.track_memory:
            start_memory(state)
        profiler = RequestProfiler(
            interval=config.profiler_interval,
            max_duration=config.max_trace_duration,
            async_mode=async_mode,
        )
        if profiler.start(caller_frame=caller_frame):
            state.profiler = profiler
            # One clock for the request and its session, which then never outlasts it.
            state.start = profiler.started
        else:
            state.start = time.perf_counter()

    def stop_profiling(self, state: RequestState, at: float | None = None) -> None:
        """Stop the request's profiler (if any); the request clock keeps running.

        ``at``: the ``perf_counter()`` the request's clock stopped at, where
        the session then ends too.
        """
        if state.sampled and state.profiler is not None and state.profiler.running:
            try:
                state.extra["session"] = state.profiler.stop(at)
                state.extra["cpu_time"] = time.thread_time() - state.start_cpu
                state.extra["thread_waits"] = waits_since(state.start_waits)
            except Exception as error:
                internal_error(error)

    def stop_timing(self, state: RequestState, end: float | None = None) -> float:
        """Stop the clock (at ``end``, else now) and the profiler; returns the duration."""
        if end is None:
            end = time.perf_counter()
        self.stop_profiling(state, end)
        return end - state.start

    def finish(
        self,
        state: RequestState,
        status: int,
        duration: float,
        *,
        exception: BaseException | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Fold the request into the aggregates; queue a record if it was sampled.

        ``exception``: what the request raised (or the framework turned into a
        5xx). ``details`` (sampled requests only) holds query_string, headers,
        remote_ip, response_size, content_type and optionally the bodies.
        """
        route = state.route or UNMATCHED_ROUTE
        kind = exception_type(exception) if exception is not None else None
        self.count(route, state.method, status, duration, kind, state.path)
        if state.sampled:
            memory = None
            if state.memory_start is not None:
                with capture_internal_exceptions():
                    memory = finish_memory(state)
            try:
                error = None
                if exception is not None:
                    error = exception_info(exception, self.config.sensitive_params)
                self._queue_record(state, route, status, duration, details or {}, memory, error)
            except Exception as problem:
                internal_error(problem)

    def count(
        self,
        route: str,
        method: str,
        status: int,
        duration: float,
        exception: str | None,
        path: str,
    ) -> None:
        """Fold one request into the endpoint aggregates (every request, sampled or not).

        ``exception`` is the type name of the exception it raised, if any.
        """
        if not self.sender_started:
            self._start_sender()
        self.aggregates.record(route, method, status, duration, exception)
        if duration > self._adaptive_after:
            self._arm_adaptive(route, path)

    def _start_sender(self) -> None:
        """First request in this process (or in a forked worker: gunicorn --preload)."""
        if self.sender is not None:
            self.sender.ensure_started()
            self.sender_started = True

    def _queue_record(
        self,
        state: RequestState,
        route: str,
        status: int,
        duration: float,
        details: dict[str, Any],
        memory: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> None:
        assert self.sender is not None
        extra = state.extra
        # What only the request thread can read now: its clocks. The rest is read by
        # the sender thread (the state is no longer written once the request finished).
        waits = extra["thread_waits"] if "thread_waits" in extra else waits_since(state.start_waits)
        cpu_time = (
            extra["cpu_time"] if "cpu_time" in extra else time.thread_time() - state.start_cpu
        )
        self.sender.submit(
            _PendingRecord(
                self, state, route, status, duration, details, memory, error, waits, cpu_time
            )
        )

    def captured(self, pending: _PendingRecord) -> CapturedRequest:
        """The record's content from a finished request (on the sender thread)."""
        state, duration, details = pending.state, pending.duration, pending.details
        request = details.pop("request", None)
        if request is not None:
            details.update(request())  # the request's headers, query string, client address
        config = self.config
        extra = state.extra
        metrics: dict[str, Any] = {
            "database_metrics": {
                "query_count": state.query_count,
                "query_time": state.query_time,
                "slow_queries": state.slow_queries,
            },
            "cache_metrics": {
                "cache_hits": state.cache_hits,
                "cache_misses": state.cache_misses,
                "cache_time": state.cache_time,
            },
        }
        if state.template_time:
            metrics["template_time"] = state.template_time
        waits = pending.waits
        if waits is not None:
            # Linux adds a wait to the counter when the thread next runs: a wait
            # begun before the request can land inside it. Never more than its time.
            # Worker threads the request handed sync code to count as its own.
            metrics["run_queue_time"] = min(waits[0] + state.thread_run_queue, duration)
            metrics["context_switches"] = waits[1] + state.thread_switches
        if pending.memory is not None:
            metrics["memory_usage"] = pending.memory
        tags = {**config.tags, **state.tags}
        if duration > config.ai_analysis_threshold and config.enable_ai_analysis:
            tags["ai_analysis"] = "requested"
        profiler = state.profiler
        return CapturedRequest(
            trace_id=trace_id_of(state),
            span_id=span_id_of(state),
            parent_span_id=extra.get("parent_span_id"),
            timestamp=state.start_wall,
            method=state.method,
            path=state.path,
            route=pending.route,
            query_string=details.get("query_string", ""),
            headers=details.get("headers", {}),
            remote_ip=details.get("remote_ip"),
            status_code=pending.status,
            response_size=details.get("response_size"),
            content_type=details.get("content_type"),
            total_duration=duration,
            # The event loop's (or request thread's) CPU plus the thread-pool work.
            cpu_time=pending.cpu_time + state.thread_cpu,
            performance_extra=metrics,
            version_info=self.version_info,
            environment=self.environment,
            tags=tags,
            session=extra.get("session"),
            thread_sessions=list(state.thread_sessions),
            max_tree_nodes=config.max_tree_nodes,
            session_min_duration=config.session_min_duration,
            sensitive_headers=config.sensitive_headers,
            sensitive_params=config.sensitive_params,
            redaction_allow=config.redaction_allow,
            request_body=details.get("request_body"),
            response_body=details.get("response_body"),
            profile_truncated=profiler.truncated if profiler is not None else False,
            error=pending.error,
            sql_statements=statements_summary(state.statements) if state.statements else None,
        )

    # -- adaptive capture --------------------------------------------------------------

    def _arm_adaptive(self, route: str, path: str) -> None:
        self._adaptive[route] = self.config.adaptive_capture_count
        if len(self._adaptive_paths) >= _ADAPTIVE_PATHS_LIMIT:
            self._adaptive_paths.clear()
        self._adaptive_paths[path] = route

    def _take_adaptive(self, path: str) -> bool:
        route = self._adaptive_paths.get(path)
        remaining = self._adaptive.get(route) if route is not None else None
        if not remaining:
            return False
        if remaining <= 1:
            self._adaptive.pop(route, None)  # type: ignore[arg-type]
        else:
            self._adaptive[route] = remaining - 1  # type: ignore[index]
        return True

    # -- lifecycle ---------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued and the aggregates; True if done within ``timeout``.

        A response is counted when the server is done with it (after its last
        body chunk was written), so a client can have the whole response
        before the request is counted. Requests whose responses were handed to
        the server before this call are waited for first (up to
        ``FINISHING_WAIT``, within ``timeout``), so a flush made after a
        response reached the client includes it.
        """
        deadline = time.monotonic() + timeout
        # At most FINISHING_WAIT: a long streamed response must not hold up every flush.
        wait_until = time.monotonic() + min(timeout, FINISHING_WAIT)
        pending = list(self.finishing)
        while pending and time.monotonic() < wait_until:
            pending = [item for item in pending if item in self.finishing]
            if pending:
                time.sleep(0.001)
        if self.sender is None:
            return True
        return self.sender.flush(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float | None = None) -> None:
        """Flush (within ``timeout``) and stop sending."""
        if self.sender is not None:
            self.sender.close(timeout)
            _monitors.discard(self)


def all_monitors() -> list[Monitor]:
    return list(_monitors)


def _forked() -> None:
    for monitor in _monitors:
        monitor.sender_started = False  # its sender thread did not survive the fork


os.register_at_fork(after_in_child=_forked)


class _PendingRecord:
    """A sampled request as the sender queues it: its state and what was read at its end.

    :meth:`build` runs on the sender thread: the record's content is put
    together there (:meth:`Monitor.captured`), then built as before.
    """

    __slots__ = (
        "monitor",
        "state",
        "route",
        "status",
        "duration",
        "details",
        "memory",
        "error",
        "waits",
        "cpu_time",
    )

    def __init__(
        self,
        monitor: Monitor,
        state: RequestState,
        route: str,
        status: int,
        duration: float,
        details: dict[str, Any],
        memory: dict[str, Any] | None,
        error: dict[str, Any] | None,
        waits: tuple[float, int] | None,
        cpu_time: float,
    ) -> None:
        self.monitor = monitor
        self.state = state
        self.route = route
        self.status = status
        self.duration = duration
        self.details = details
        self.memory = memory
        self.error = error
        self.waits = waits
        self.cpu_time = cpu_time

    def build(self) -> dict[str, Any]:
        return self.monitor.captured(self).build()
