"""W3C Trace Context (``traceparent``) and the ``Server-Timing`` header.

A sampled request that arrives with a valid ``traceparent`` is stored under
that trace's id, with the caller's span id as ``parent_span_id``, so a profile
can be found from the trace in Jaeger, Tempo or Sentry. Anything that is not a
valid header per https://www.w3.org/TR/trace-context/#traceparent-header is
ignored and the request gets the SDK's own id (32 lowercase hex characters,
the same format).

Every sampled request also gets a span id of its own (16 lowercase hex, as
OpenTelemetry and Sentry give each span): several requests of one trace
(a page calling the same API twice, retries, a service calling itself) share
the trace id, and ``<trace id>-<span id>``, the record's key, tells them apart.
The ``Server-Timing`` header names that key, so devtools show which request
to open.

The parsing and formatting are pure functions; :func:`adopt_traceparent`,
:func:`trace_id_of` and :func:`span_id_of` keep the result in the request
state's ``extra`` dict, which only sampled requests have.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .request import RequestState

#: The Server-Timing metric name (``Server-Timing: pystrument;desc="<trace id>-<span id>";dur=<ms>``).
SERVER_TIMING_METRIC = "pystrument"
_HEX = "0123456789abcdef"
# version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex only (HEXDIGLC).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_INVALID_TRACE_ID = "0" * 32
_INVALID_PARENT_ID = "0" * 16


class TraceParent(NamedTuple):
    trace_id: str
    parent_id: str
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 0x01)


def parse_traceparent(value: str | bytes | None) -> TraceParent | None:
    """The parsed header, or None when it is absent or not valid per the W3C spec.

    Version ``00`` must be exactly 55 characters; a later version (``01``–``fe``)
    is read by its first four fields when what follows starts with ``-``, as the
    spec asks; ``ff`` and all-zero trace or parent ids are invalid.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if len(value) > 512:  # a proxy's junk or an attack; the spec's header is 55 characters
        return None
    value = value.strip(" \t")
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff":
        return None
    if version == "00" and len(value) != 55:
        return None
    if len(value) > 55 and value[55] != "-":
        return None
    if trace_id == _INVALID_TRACE_ID or parent_id == _INVALID_PARENT_ID:
        return None
    return TraceParent(trace_id, parent_id, int(flags, 16))


def new_trace_id() -> str:
    """A fresh trace id in the W3C format (16 random bytes as lowercase hex)."""
    return os.urandom(16).hex()


def new_span_id() -> str:
    """A fresh span id in the W3C format (8 random bytes as lowercase hex, never all zero)."""
    while True:
        span_id = os.urandom(8).hex()
        if span_id != _INVALID_PARENT_ID:
            return span_id


def server_timing(trace_id: str, span_id: str, duration: float) -> str:
    """The ``Server-Timing`` value for a request: its record key and ``duration`` (s) in ms."""
    if not all(char in _HEX for char in trace_id + span_id):
        # Only our ids and validated W3C ids get here; never emit a header we did not check.
        raise ValueError(f"not a hex trace or span id: {trace_id!r}, {span_id!r}")
    duration_ms = max(0.0, duration) * 1000
    return f'{SERVER_TIMING_METRIC};desc="{trace_id}-{span_id}";dur={duration_ms:.1f}'


def adopt_traceparent(state: RequestState, header: str | bytes | None) -> None:
    """Give a sampled request the trace id and parent span id of a valid ``traceparent``."""
    if not state.sampled or header is None:
        return
    parent = parse_traceparent(header)
    if parent is not None:
        state.extra["trace_id"] = parent.trace_id
        state.extra["parent_span_id"] = parent.parent_id


def trace_id_of(state: RequestState) -> str:
    """The trace id a sampled request's record gets (assigned on first use)."""
    trace_id = state.extra.get("trace_id")
    if trace_id is None:
        trace_id = state.extra["trace_id"] = new_trace_id()
    return str(trace_id)


def span_id_of(state: RequestState) -> str:
    """The span id of a sampled request's record (assigned on first use)."""
    span_id = state.extra.get("span_id")
    if span_id is None:
        span_id = state.extra["span_id"] = new_span_id()
    return str(span_id)


def server_timing_of(state: RequestState) -> str:
    """The ``Server-Timing`` value of a sampled request, timed up to now."""
    return server_timing(trace_id_of(state), span_id_of(state), time.perf_counter() - state.start)
