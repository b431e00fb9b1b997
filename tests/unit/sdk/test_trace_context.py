"""W3C traceparent parsing, the Server-Timing value, and both on WSGI and ASGI requests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import performance_monitor
import pytest
from fastapi import FastAPI
from performance_monitor._wsgi_common import MonitoredWSGIApp
from performance_monitor.core.trace_context import (
    TraceParent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    server_timing,
)
from performance_monitor.fastapi import PerformanceMiddleware

from tests.utils.sink import Sink

from .test_wsgi import monitor_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{PARENT}-01", TraceParent(TRACE, PARENT, 1)),
        (f"00-{TRACE}-{PARENT}-00", TraceParent(TRACE, PARENT, 0)),
        (f"  00-{TRACE}-{PARENT}-09\t".encode(), TraceParent(TRACE, PARENT, 9)),
        # A later version: the first four fields are read, what follows a "-" ignored.
        (f"cc-{TRACE}-{PARENT}-01-what-the-future-holds", TraceParent(TRACE, PARENT, 1)),
    ],
)
def test_valid_traceparent(header: str | bytes, expected: TraceParent) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"00-{TRACE.upper()}-{PARENT}-01",  # lowercase hex only
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"cc-{TRACE}-{PARENT}-01x",  # a later version still needs "-" after the flags
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-1",
        f"00-{TRACE}-{PARENT}-0g",
        f"0-{TRACE}-{PARENT}-01",
        f"00_{TRACE}_{PARENT}_01",
        f"00-{TRACE}-{PARENT}-01,00-{TRACE}-{PARENT}-01",  # two headers folded into one
        "00-" + "a" * 1000,
        b"\xff\xfe",
    ],
)
def test_malformed_traceparent_is_ignored(header: str | bytes | None) -> None:
    assert parse_traceparent(header) is None


def test_server_timing_value() -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    assert len(trace_id) == 32 and int(trace_id, 16) >= 0
    assert len(span_id) == 16 and int(span_id, 16) > 0
    assert (
        server_timing(trace_id, span_id, 0.01234)
        == f'pystrument;desc="{trace_id}-{span_id}";dur=12.3'
    )
    assert server_timing(trace_id, span_id, -1.0).endswith(";dur=0.0")
    with pytest.raises(ValueError):
        server_timing('x";dur=1', span_id, 0.1)
    with pytest.raises(ValueError):
        server_timing(trace_id, 'x";dur=1', 0.1)


def test_span_ids_are_fresh_per_call() -> None:
    spans = {new_span_id() for _ in range(1000)}
    assert len(spans) == 1000
    assert all(len(span) == 16 and span == span.lower() and span != "0" * 16 for span in spans)


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _call(app: Any, headers: dict[str, str]) -> list[tuple[str, str]]:
    seen: list[Any] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/a"}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    result = app(environ, lambda status, response_headers, *a: seen.append(response_headers))
    list(result)
    if hasattr(result, "close"):
        result.close()
    return list(seen[0])


@pytest.mark.parametrize("on", [True, False])
def test_wsgi_traceparent_and_server_timing(sink: Sink, on: bool) -> None:
    monitor = monitor_for(sink, server_timing=on)
    app = MonitoredWSGIApp(_wsgi_app, monitor, lambda environ: "/a")
    traced = dict(_call(app, {"traceparent": f"00-{TRACE}-{PARENT}-01"}))
    plain = dict(_call(app, {"traceparent": f"00-{TRACE}-{PARENT}"}))
    monitor.flush(5)
    records = sink.records()
    assert [r["trace_id"] == TRACE for r in records] == [True, False]
    assert records[0]["parent_span_id"] == PARENT and "parent_span_id" not in records[1]
    # Each request is a span of its own: never the caller's span id.
    assert records[0]["span_id"] != PARENT and records[0]["span_id"] != records[1]["span_id"]
    if on:
        first, second = (f"{r['trace_id']}-{r['span_id']}" for r in records)
        assert traced["Server-Timing"].startswith(f'pystrument;desc="{first}";dur=')
        assert first.startswith(TRACE + "-")
        assert f'desc="{second}"' in plain["Server-Timing"]
    else:
        assert "Server-Timing" not in traced and "Server-Timing" not in plain


def test_unsampled_requests_carry_no_server_timing(sink: Sink) -> None:
    monitor = monitor_for(sink, server_timing=True, sampling_rate=0.0)
    app = MonitoredWSGIApp(_wsgi_app, monitor, lambda environ: "/a")
    assert "Server-Timing" not in dict(_call(app, {"traceparent": f"00-{TRACE}-{PARENT}-01"}))


def test_asgi_traceparent_and_server_timing(sink: Sink) -> None:
    inner = FastAPI()

    @inner.get("/b/{n}")
    async def show(n: int) -> dict[str, int]:
        return {"n": n}

    app = PerformanceMiddleware(
        inner,
        project_key="pk",
        api_endpoint=sink.url,
        sampling_rate=1.0,
        remote_config=False,
        server_timing=True,
    )

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.get("/b/1", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"}),
                # Two traceparent headers make the request's context invalid (W3C).
                await client.get(
                    "/b/2",
                    headers=[
                        ("traceparent", f"00-{TRACE}-{PARENT}-01"),
                        ("traceparent", f"00-{TRACE}-{PARENT}-01"),
                    ],
                ),
            ]

    first, second = asyncio.run(run())
    assert first.json() == {"n": 1}
    assert performance_monitor.flush(5)
    by_path = {r["request_info"]["path"]: r for r in sink.records()}
    assert by_path["/b/1"]["trace_id"] == TRACE
    assert by_path["/b/1"]["parent_span_id"] == PARENT
    assert by_path["/b/2"]["trace_id"] != TRACE
    one, two = (f"{r['trace_id']}-{r['span_id']}" for r in (by_path["/b/1"], by_path["/b/2"]))
    assert first.headers["server-timing"].startswith(f'pystrument;desc="{one}";dur=')
    assert f'desc="{two}"' in second.headers["server-timing"]


def test_lifespan_shutdown_sends_what_is_queued(sink: Sink) -> None:
    inner = FastAPI()

    @inner.get("/c")
    async def show() -> dict[str, bool]:
        return {"ok": True}

    # Only a flush can send before the batch timer (a minute) runs out.
    app = PerformanceMiddleware(
        inner,
        project_key="pk",
        api_endpoint=sink.url,
        sampling_rate=1.0,
        remote_config=False,
        batch_timeout=60,
    )

    async def run() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/c")).json() == {"ok": True}
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, str]:
            return inbox.pop(0)

        async def send(message: Any) -> None:
            sent.append(message["type"])

        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        return sent

    sent = asyncio.run(run())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [r["request_info"]["path"] for r in sink.records()] == ["/c"]
