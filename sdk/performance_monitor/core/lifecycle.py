"""One request from its start to its end: the lifecycle every integration shares.

An integration decides sampling once (:meth:`Monitor.decide`), creates a
:class:`MonitoredRequest` subclass for a measured request, notes the status
(and route, exception, response size) as the response passes, calls
:meth:`MonitoredRequest.hand_over` when it gives a response the server still
has to send, and :meth:`MonitoredRequest.finish` exactly once at its end.
An unsampled request has no :class:`RequestState` and ends in one aggregate
update; a sampled one is profiled, published to the SQL/cache hooks through
the context variable and queued as a record.
"""

from __future__ import annotations

import weakref
from time import perf_counter
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from ..utils.logger import capture_internal_exceptions, internal_error
from .exceptions import exception_type
from .request import RequestState, reset_current, set_current
from .trace_context import adopt_traceparent, server_timing_of

if TYPE_CHECKING:
    from .monitor import Monitor

UNMATCHED_ROUTE = "[unmatched]"


class MonitoredRequest:
    """Shared begin/finish; subclasses say how to find the route and the sampled details."""

    __slots__ = (
        "monitor",
        "method",
        "path",
        "state",
        "token",
        "start",
        "status",
        "route",
        "complete",
        "exception",
        "handed",
        "finished",
        "__weakref__",
    )

    def __init__(
        self,
        monitor: Monitor,
        method: str,
        path: str,
        sampled: bool,
        frame: FrameType | None = None,
        async_mode: Literal["enabled", "disabled"] | None = None,
    ) -> None:
        self.monitor = monitor
        self.method = method
        self.path = path
        self.status = 0
        self.route: str | None = None
        self.complete = False
        #: An exception the framework caught and turned into a response (it counts at 5xx).
        self.exception: BaseException | None = None
        self.handed: weakref.ref[MonitoredRequest] | None = None
        self.finished = False
        self.token = None
        self.state: RequestState | None = None
        if not sampled:
            # The hot path: an unsampled request is a start time and, at its end, a count.
            self.start = perf_counter()
            return
        state = None
        try:  # the guard's work, without its three calls (as on the unsampled path)
            # ``frame``: the integration's call, where pyinstrument attributes awaits.
            state = monitor.begin(
                method, path, sampled=True, caller_frame=frame, async_mode=async_mode
            )
        except Exception as error:
            internal_error(error)
        self.state = state
        if state is not None:
            self.start = state.start
            # Only sampled requests need to be found by the SQL/cache hooks and decorators.
            self.token = set_current(state)
            try:
                adopt_traceparent(state, self.traceparent())
            except Exception as error:
                internal_error(error)
        else:
            self.start = perf_counter()

    # -- hooks for the integrations --------------------------------------------------

    def resolve_route(self) -> str | None:
        """The route template, when :attr:`route` was not noted on the way."""
        return None

    def details(self) -> dict[str, Any]:
        """query_string, headers, remote_ip, response_size, content_type (sampled only)."""
        return {}

    def traceparent(self) -> str | bytes | None:
        """The request's W3C ``traceparent`` header (sampled only; set before this init)."""
        return None

    # -- the shared part -------------------------------------------------------------

    def server_timing(self) -> str | None:
        """The ``Server-Timing`` value for the response: sampled requests, when configured."""
        state = self.state
        if state is None or not self.monitor.config.server_timing:
            return None
        with capture_internal_exceptions():
            return server_timing_of(state)
        return None

    def hand_over(self) -> None:
        """The response goes to the server: until :meth:`finish`, a flush waits for it."""
        monitor = self.monitor
        self.handed = weakref.ref(self, monitor.forget_finishing)
        monitor.finishing.add(self.handed)

    def finish(self, error: BaseException | None = None) -> None:
        """End the request (once): ``error`` is an exception that escaped the app."""
        if self.finished:
            return
        self.finished = True
        end = perf_counter()
        try:
            self._finish(end, error)
        except Exception as problem:
            internal_error(problem)
        if self.handed is not None:
            self.monitor.forget_finishing(self.handed)
        if self.token is not None:
            reset_current(self.token)
            self.token = None

    def _finish(self, end: float, error: BaseException | None) -> None:
        monitor = self.monitor
        # An exception after the response was sent does not change what the client got.
        status = self.status if self.status and not (error and not self.complete) else 500
        exception = error if error is not None else self.exception
        if exception is not None and error is None and status < 500:
            exception = None  # turned into a 4xx (or a redirect) by the app: not an error
        route = self.route or self.resolve_route() or UNMATCHED_ROUTE
        state = self.state
        if state is None:
            kind = exception_type(exception) if exception is not None else None
            monitor.count(route, self.method, status, end - self.start, kind, self.path)
            return
        state.route = route
        duration = monitor.stop_timing(state, end)
        monitor.finish(state, status, duration, exception=exception, details=self.details())
