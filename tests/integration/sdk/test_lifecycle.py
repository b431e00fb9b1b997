"""The shared request lifecycle through each framework's middleware on a real server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest

from tests.utils.sink import Sink

from .apps import django_app
from .servers import serve_asgi, serve_wsgi

django_app.setup()

SLOW = 1.0


def _sdk(sink: Sink, **extra: Any) -> dict[str, Any]:
    return {
        "project_key": "pk",
        "api_endpoint": sink.url,
        "remote_config": False,
        "batch_timeout": 0.1,
        "metrics_interval": 0.2,
        **extra,
    }


def _spin(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


@contextmanager
def _flask(settings: dict[str, Any]) -> Iterator[str]:
    from flask import Flask, request
    from performance_monitor.flask import PerformanceMiddleware

    app = Flask("lifecycle")

    @app.route("/w/<int:n>")
    def alpha(n: int) -> dict[str, int]:
        _spin(float(request.args.get("s", "0.015")))
        return {"n": n}

    PerformanceMiddleware(app, settings)
    with serve_wsgi(app) as url:
        yield url


@contextmanager
def _fastapi(settings: dict[str, Any]) -> Iterator[str]:
    from fastapi import FastAPI
    from performance_monitor.fastapi import PerformanceMiddleware

    app = FastAPI()

    @app.get("/w/{n}")
    def alpha(n: int, s: float = 0.015) -> dict[str, int]:
        _spin(s)
        return {"n": n}

    app.add_middleware(PerformanceMiddleware, **settings)
    with serve_asgi(app) as url:
        yield url


def beta(request: Any, n: int) -> Any:
    from django.http import JsonResponse

    _spin(float(request.GET.get("s", "0.015")))
    return JsonResponse({"n": n})


def _gamma(request: Any, n: int) -> Any:
    return beta(request, n)


def _urlpatterns() -> list[Any]:
    from django.urls import path
    from performance_monitor.django.decorators import monitor_view

    return [
        path("w/<int:n>", beta),
        path("d/<int:n>", monitor_view(track_sql=True, custom_tags={"k": "v"})(_gamma)),
    ]


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


@contextmanager
def _django(settings: dict[str, Any]) -> Iterator[str]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    with (
        override_settings(
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE],
            PERFORMANCE_MONITOR={k.upper(): v for k, v in settings.items()},
        ),
        serve_wsgi(WSGIHandler()) as url,
    ):
        yield url


SERVERS: dict[str, Callable[[dict[str, Any]], AbstractContextManager[str]]] = {
    "flask": _flask,
    "fastapi": _fastapi,
    "django": _django,
}


def _flush() -> None:
    from performance_monitor.core.monitor import all_monitors

    for monitor in all_monitors():
        assert monitor.flush(5)


@pytest.mark.parametrize("framework", SERVERS)
def test_adaptive_capture_profiles_as_many_requests_as_configured(
    sink: Sink, framework: str
) -> None:
    from performance_monitor.core.monitor import all_monitors

    settings = _sdk(sink, sampling_rate=0, ai_analysis_threshold=SLOW / 2, adaptive_capture_count=4)
    earlier = set(all_monitors())
    with SERVERS[framework](settings) as url, httpx.Client(base_url=url) as client:
        assert client.get("/w/7", params={"s": SLOW}).json() == {"n": 7}  # slow: arms it
        # A server counts a request, and so arms adaptive capture, when its response
        # body ends: after the client may have read the response and sent the next
        # request on another connection. Requests from then on are the next ones.
        deadline = time.monotonic() + 5
        while not any(monitor._adaptive for monitor in set(all_monitors()) - earlier):
            assert time.monotonic() < deadline, "the slow request did not arm adaptive capture"
            time.sleep(0.005)
        for i in range(8):
            assert client.get("/w/7", params={"s": 0.001 * i}).json() == {"n": 7}
        _flush()
    query = [r["request_info"]["query_params"]["s"] for r in sink.records()]
    assert query == ["0.0", "0.001", "0.002", "0.003"]  # the next four, each profiled
    counted = sum(m["count"] for m in sink.metric_points() if m["route"].startswith("/w/"))
    assert counted == 9


def test_django_decorated_view_is_sampled_like_any_other(sink: Sink) -> None:
    n = 60
    with _django(_sdk(sink, sampling_rate=50)) as url, httpx.Client(base_url=url) as client:
        for i in range(n):
            assert client.get(f"/d/{i}").json() == {"n": i}
            assert client.get(f"/w/{i}").json() == {"n": i}
        _flush()
    records = sink.records()
    decorated = [r for r in records if r["request_info"]["path"].startswith("/d/")]
    plain = [r for r in records if r["request_info"]["path"].startswith("/w/")]
    # Binomial(60, 0.5): outside [15, 45] with probability below 1e-4.
    assert 15 <= len(decorated) <= 45 and 15 <= len(plain) <= 45
    for record in decorated:
        names = [node["function_name"] for node in record["function_calls"]]
        assert "_gamma" in names and "beta" in names and "_spin" in names
        assert record["tags"]["k"] == "v"
        assert record["request_info"]["route"] == "/d/<int:n>"
    counted = sum(m["count"] for m in sink.metric_points() if m["route"] == "/d/<int:n>")
    assert counted == n
