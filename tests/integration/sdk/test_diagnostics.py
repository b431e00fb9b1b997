"""Exceptions, SQL statements and allocation sites stored per record, through real servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from .apps import django_app
from .helpers import stored_records, wait_until
from .servers import serve_asgi, serve_wsgi

django_app.setup()


def _exceptions(store: Any, key: str, route: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for doc in store.endpoint_metrics.find(
        {"project_key": key, "route": route, "resolution": "1m"}
    ):
        for kind, n in (doc.get("exceptions") or {}).items():
            totals[kind.replace("\uff0e", ".")] = totals.get(kind, 0) + n
    return totals


def _flush() -> None:
    from performance_monitor.core.monitor import all_monitors

    for monitor in all_monitors():
        assert monitor.flush(5)


def _check_error(record: dict[str, Any], kind: str, raised_in: str, called_from: str) -> None:
    assert record["status_code"] == 500
    error = record["error"]
    assert error["type"] == kind
    assert error["message"] == "no 7 for password=[Filtered] here"
    frames = error["traceback"]
    assert frames[-1]["function"] == raised_in and frames[-1]["is_application"]
    assert frames[-1]["file"] == __file__
    assert called_from in [f["function"] for f in frames if f["is_application"]]
    assert not all(f["is_application"] for f in frames)  # the framework's frames are there


def _iota(n: int) -> int:
    raise LookupError(f"no {n} for password=hunter2 here")


def _theta(n: int) -> int:
    return _iota(n) + 1


# -- Flask under werkzeug ------------------------------------------------------------


@contextmanager
def _flask(settings: dict[str, Any]) -> Iterator[str]:
    from flask import Flask, abort
    from performance_monitor.flask import PerformanceMiddleware

    app = Flask("diagnostics")

    @app.route("/e/<int:n>")
    def epsilon(n: int) -> dict[str, int]:
        if n == 4:
            abort(404)
        return {"n": _theta(n)}

    PerformanceMiddleware(app, settings)
    with serve_wsgi(app) as url:
        yield url


def test_flask_exception_stored_and_counted(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    with _flask(sdk_settings) as url:
        for _ in range(3):
            assert httpx.get(f"{url}/e/7").status_code == 500
        assert httpx.get(f"{url}/e/4").status_code == 404
        _flush()
    key = project["project_key"]
    records = stored_records(store, key, 4)
    failed = [r for r in records if r["path"] == "/e/7"]
    assert len(failed) == 3
    for record in failed:
        _check_error(record, "LookupError", "_iota", "_theta")
    (not_found,) = [r for r in records if r["path"] == "/e/4"]
    assert not_found["status_code"] == 404 and not_found.get("error") is None
    assert wait_until(lambda: _exceptions(store, key, "/e/<int:n>") == {"LookupError": 3})


def test_exceptions_counted_without_sampling(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    with _flask({**sdk_settings, "sampling_rate": 0, "remote_config": False}) as url:
        for _ in range(5):
            assert httpx.get(f"{url}/e/7").status_code == 500
        assert httpx.get(f"{url}/e/4").status_code == 404
        _flush()
    key = project["project_key"]
    assert wait_until(lambda: _exceptions(store, key, "/e/<int:n>") == {"LookupError": 5})
    assert store.records.count_documents({"project_key": key}) == 0


# -- FastAPI under uvicorn -----------------------------------------------------------


def test_fastapi_exception_stored(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    from fastapi import FastAPI, HTTPException
    from performance_monitor.fastapi import PerformanceMiddleware

    app = FastAPI()

    @app.get("/e/{n}")
    async def epsilon(n: int) -> dict[str, int]:
        if n == 4:
            raise HTTPException(404)
        return {"n": _theta(n)}

    app.add_middleware(PerformanceMiddleware, **sdk_settings)
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/e/7").status_code == 500
        assert httpx.get(f"{url}/e/4").status_code == 404
        _flush()
    key = project["project_key"]
    records = {r["path"]: r for r in stored_records(store, key, 2)}
    _check_error(records["/e/7"], "LookupError", "_iota", "_theta")
    assert records["/e/4"]["status_code"] == 404 and records["/e/4"].get("error") is None
    assert wait_until(lambda: _exceptions(store, key, "/e/{n}") == {"LookupError": 1})


# -- Django through its WSGI handler -------------------------------------------------


def zeta(request: Any, n: int) -> Any:
    from django.http import Http404, JsonResponse

    if n == 4:
        raise Http404("gone")
    return JsonResponse({"n": _theta(n)})


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        from django.urls import path

        return [path("e/<int:n>", zeta)]
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


def test_django_exception_stored(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    with _django(sdk_settings) as url:
        assert httpx.get(f"{url}/e/7").status_code == 500
        assert httpx.get(f"{url}/e/4").status_code == 404
        _flush()
    key = project["project_key"]
    records = {r["path"]: r for r in stored_records(store, key, 2)}
    _check_error(records["/e/7"], "LookupError", "_iota", "_theta")
    assert records["/e/4"]["status_code"] == 404 and records["/e/4"].get("error") is None
    assert wait_until(lambda: _exceptions(store, key, "/e/<int:n>") == {"LookupError": 1})
