from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from performance_monitor._wsgi_common import MonitoredWSGIApp
from performance_monitor.core import profiler as profiler_module
from performance_monitor.core.monitor import Monitor
from performance_monitor.utils.config import Config
from pyinstrument import Profiler

from tests.utils.sink import Sink


def monitor_for(sink: Sink, **extra: Any) -> Monitor:
    values = {
        "project_key": "pk",
        "api_endpoint": sink.url,
        "sampling_rate": 1.0,
        "remote_config": False,
    }
    return Monitor(Config({**values, **extra}), framework="wsgi")


class Body:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Any:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def call(app: Any, path: str = "/x") -> tuple[list[Any], list[bytes], Any]:
    seen: list[Any] = []
    result = app({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda s, h, *a: seen.append((s, h)))
    body = list(result)
    if hasattr(result, "close"):
        result.close()
    return seen, body, result


def test_status_headers_body_and_close_pass_through(sink: Sink) -> None:
    inner_body = Body([b"a", b"bc"])

    def app(environ: Any, start_response: Any) -> Any:
        start_response("201 Created", [("Content-Type", "text/x"), ("X-A", "1")])
        return inner_body

    monitor = monitor_for(sink)
    seen, body, _ = call(MonitoredWSGIApp(app, monitor, lambda environ: "/route"))
    assert seen == [("201 Created", [("Content-Type", "text/x"), ("X-A", "1")])]
    assert body == [b"a", b"bc"] and inner_body.closed
    monitor.flush(5)
    (record,) = sink.records()
    assert record["response_info"] == {
        "status_code": 201,
        "response_size": 3,
        "content_type": "text/x",
    }
    assert record["request_info"]["route"] == "/route"
    assert "profile_session" not in record  # a sample or two: the tree says it all


def test_app_exception_propagates_unchanged_and_counts_as_error(sink: Sink) -> None:
    error = ValueError("mine")

    def app(environ: Any, start_response: Any) -> Any:
        raise error

    monitor = monitor_for(sink, sampling_rate=0)
    with pytest.raises(ValueError) as raised:
        call(MonitoredWSGIApp(app, monitor, lambda environ: "/r"))
    assert raised.value is error
    (point,) = monitor.aggregates.drain()
    assert point["errors"] == 1 and point["status_class"] == "5xx"


def test_user_profiler_on_the_thread_is_left_alone(sink: Sink) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return [b"ok"]

    monitor = monitor_for(sink)
    before = profiler_module.skipped_profiles
    user = Profiler(async_mode="disabled")
    user.start()
    try:
        _, body, _ = call(MonitoredWSGIApp(app, monitor, lambda environ: "/r"))
    finally:
        user.stop()
    assert body == [b"ok"] and profiler_module.skipped_profiles == before + 1
    monitor.flush(5)
    (record,) = sink.records()
    assert "function_calls" not in record


def test_sdk_internal_error_is_swallowed_in_production_mode(
    sink: Sink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from performance_monitor.utils import logger as sdk_logger

    monkeypatch.setattr(sdk_logger, "raise_internal_errors", False)

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return [b"fine"]

    def broken_resolver(environ: Any) -> str:
        raise KeyError("sdk bug")

    before = sdk_logger.internal_error_count()
    _, body, _ = call(MonitoredWSGIApp(app, monitor_for(sink), broken_resolver))
    assert body == [b"fine"]
    assert sdk_logger.internal_error_count() == before + 1
    assert "internal error (ignored)" in caplog.text and "sdk bug" in caplog.text


def test_sdk_internal_error_raises_in_test_mode(sink: Sink) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return [b"fine"]

    def broken_resolver(environ: Any) -> str:
        raise KeyError("sdk bug")

    with pytest.raises(KeyError):
        call(MonitoredWSGIApp(app, monitor_for(sink, sampling_rate=0), broken_resolver))


def test_max_trace_duration_bounds_the_profile(sink: Sink) -> None:
    import time

    def app(environ: Any, start_response: Any) -> Any:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
        start_response("200 OK", [])
        return [b"ok"]

    monitor = monitor_for(sink, max_trace_duration=0.05)
    call(MonitoredWSGIApp(app, monitor, lambda environ: "/r"))
    monitor.flush(5)
    (record,) = sink.records()
    assert record["performance_metrics"]["total_duration"] >= 0.3
    assert record["tags"]["profile_truncated"] == "true"
    root = record["function_calls"][0]
    assert root["duration"] < 0.2  # samples after the bound were not recorded


def test_flush_after_the_client_got_the_body_includes_the_request(sink: Sink) -> None:
    """The server closes the response a little after the client received the last chunk."""

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"a", b"b"])

    monitor = monitor_for(sink, sampling_rate=0.0)
    wrapped = MonitoredWSGIApp(app, monitor, lambda environ: "/x")
    delivered = threading.Event()

    def serve() -> None:
        result = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, lambda s, h, *a: None)
        for _chunk in result:
            pass
        delivered.set()
        time.sleep(0.3)
        result.close()

    server = threading.Thread(target=serve)
    server.start()
    try:
        assert delivered.wait(5)
        assert monitor.flush(5)
        assert [(p["route"], p["count"]) for p in sink.metric_points()] == [("/x", 1)]
    finally:
        server.join()


def test_unsampled_request_is_counted_without_request_state(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path: no RequestState, the app's list body handed back as is, one count."""
    import performance_monitor.core.monitor as monitor_module

    def no_state(*args: Any) -> Any:
        raise AssertionError("an unsampled request built a RequestState")

    monkeypatch.setattr(monitor_module, "RequestState", no_state)
    body = [b"a", b"bc"]

    def app(environ: Any, start_response: Any) -> Any:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return body if environ["PATH_INFO"].endswith("1") else Body(body)

    monitor = monitor_for(sink, sampling_rate=0.0)
    wrapped = MonitoredWSGIApp(app, monitor, lambda environ: "/items/<id>")
    result = wrapped({"REQUEST_METHOD": "POST", "PATH_INFO": "/items/1"}, lambda s, h, *a: None)
    assert result is body
    streamed = wrapped({"REQUEST_METHOD": "POST", "PATH_INFO": "/items/2"}, lambda s, h, *a: None)
    assert streamed is not body and list(streamed) == [b"a", b"bc"]
    assert monitor.flush(5)
    (point,) = sink.metric_points()
    assert (point["route"], point["method"], point["status_class"], point["count"]) == (
        "/items/<id>",
        "POST",
        "4xx",
        2,
    )
    assert sink.records() == []


def test_a_response_the_server_drops_unclosed_does_not_hold_up_flush(sink: Sink) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return Body([b"never read"])

    monitor = monitor_for(sink, sampling_rate=0.0)
    wrapped = MonitoredWSGIApp(app, monitor, lambda environ: "/x")
    result = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, lambda s, h, *a: None)
    assert len(monitor.finishing) == 1
    del result  # e.g. a test client that never reads nor closes the body
    assert len(monitor.finishing) == 0
    started = time.monotonic()
    assert monitor.flush(5)
    assert time.monotonic() - started < 1.0
