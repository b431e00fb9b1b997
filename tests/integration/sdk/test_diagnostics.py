"""Exceptions, SQL statements and allocation sites stored per record, through real servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from pystrument_lab.loaders import Lab

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
    lab = Lab(store)
    loaded = lab.record(failed[0]["trace_id"])
    assert loaded.error is not None and loaded.error["type"] == "LookupError"
    assert lab.record(not_found["trace_id"]).error is None
    frame = lab.records(key)
    assert sorted(frame["error_type"].to_list(), key=str) == [*["LookupError"] * 3, None]
    counts = lab.exceptions(key)
    assert counts.to_dicts() == [
        {"route": "/e/<int:n>", "method": "GET", "exception": "LookupError", "count": 3}
    ]


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

        return [path("e/<int:n>", zeta), path("q/<int:n>", xi)]
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


# -- SQL statements ------------------------------------------------------------------

SELECT_ONE = "SELECT name FROM items WHERE id = ?"
COUNT_OTHERS = "SELECT COUNT(*) FROM items WHERE name <> ? AND id > ?"


def _check_statements(record: dict[str, Any], n: int, caller: str) -> None:
    database = record["performance_metrics"]["database_metrics"]
    items = {s["statement"]: s for s in database["statements"]["items"]}
    assert set(items) == {SELECT_ONE, COUNT_OTHERS}
    assert items[SELECT_ONE]["count"] == n and items[COUNT_OTHERS]["count"] == 1
    assert database["query_count"] == n + 1
    for item in items.values():
        assert 0 < item["max_duration"] <= item["total_duration"]
        assert item["call_site"]["function"] == caller
        assert item["call_site"]["file"] == __file__
    assert database["statements"]["other_statements"] == 0


def _mu(execute: Any, n: int, mark: str) -> None:
    for i in range(1, n + 1):
        execute(f"SELECT name FROM items WHERE id = {mark}", (i,))
    execute("SELECT COUNT(*) FROM items WHERE name <> 'x' AND id > 2")


def _engine(path: Any) -> Any:
    from performance_monitor.sqlalchemy import instrument_engine
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
        for i in range(20):
            conn.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": f"i{i}"})
    return instrument_engine(engine)


def _sqlalchemy_run(engine: Any, n: int) -> None:
    with engine.connect() as conn:
        # exec_driver_sql runs the DB-API statement as given, through the engine's events.
        _mu(conn.exec_driver_sql, n, "?")


def test_flask_sqlalchemy_statements(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any], tmp_path: Any
) -> None:
    from flask import Flask
    from performance_monitor.flask import PerformanceMiddleware

    engine = _engine(tmp_path / "f.sqlite3")
    app = Flask("statements")

    @app.route("/q/<int:n>")
    def nu(n: int) -> dict[str, int]:
        _sqlalchemy_run(engine, n)
        return {"n": n}

    PerformanceMiddleware(app, sdk_settings)
    with serve_wsgi(app) as url:
        for n in (3, 11):
            assert httpx.get(f"{url}/q/{n}").json() == {"n": n}
        _flush()
    records = {r["path"]: r for r in stored_records(store, project["project_key"], 2)}
    _check_statements(records["/q/3"], 3, "_mu")
    _check_statements(records["/q/11"], 11, "_mu")
    loaded = Lab(store).record(records["/q/11"]["trace_id"])
    assert {s["statement"]: s["count"] for s in loaded.sql_statements} == {
        SELECT_ONE: 11,
        COUNT_OTHERS: 1,
    }
    frame = Lab(store).records(project["project_key"])
    assert sorted(frame["statement_count"].to_list()) == [2, 2]


def test_fastapi_sqlalchemy_statements(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any], tmp_path: Any
) -> None:
    from fastapi import FastAPI
    from performance_monitor.fastapi import PerformanceMiddleware

    engine = _engine(tmp_path / "a.sqlite3")
    app = FastAPI()

    @app.get("/q/{n}")
    def nu(n: int) -> dict[str, int]:
        _sqlalchemy_run(engine, n)
        return {"n": n}

    app.add_middleware(PerformanceMiddleware, **sdk_settings)
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/q/7").json() == {"n": 7}
        _flush()
    (record,) = stored_records(store, project["project_key"], 1)
    _check_statements(record, 7, "_mu")


def xi(request: Any, n: int) -> Any:
    from django.db import connection
    from django.http import JsonResponse

    with connection.cursor() as cursor:
        _mu(cursor.execute, n, "%s")
    return JsonResponse({"n": n})


def test_django_statements(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    with _django(sdk_settings) as url:
        assert httpx.get(f"{url}/q/9").json() == {"n": 9}
        _flush()
    (record,) = stored_records(store, project["project_key"], 1)
    _check_statements(record, 9, "_mu")


# -- allocation sites ----------------------------------------------------------------

_HELD: list[Any] = []


def _omicron(n: int) -> int:
    _HELD.append([bytes(1000) + bytes([i % 256]) for i in range(n)])
    return len(_HELD)


def _check_allocations(record: dict[str, Any], n: int) -> None:
    sites = record["performance_metrics"]["memory_usage"]["allocations"]
    top = sites[0]
    assert top["function"] == "_omicron" and top["file"] == __file__
    assert top["size"] >= n * 1000 and top["count"] >= n
    assert record["performance_metrics"]["memory_usage"]["peak_memory"] >= n * 1000 / 1e6


def test_flask_allocation_sites(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    from flask import Flask
    from performance_monitor.flask import PerformanceMiddleware

    app = Flask("allocations")

    @app.route("/m/<int:n>")
    def pi(n: int) -> dict[str, int]:
        return {"n": _omicron(n)}

    PerformanceMiddleware(app, {**sdk_settings, "track_memory": True})
    with serve_wsgi(app) as url:
        assert httpx.get(f"{url}/m/3000").status_code == 200
        _flush()
    (record,) = stored_records(store, project["project_key"], 1)
    _check_allocations(record, 3000)
    assert Lab(store).record(record["trace_id"]).allocations[0]["function"] == "_omicron"


def test_fastapi_allocation_sites(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    from fastapi import FastAPI
    from performance_monitor.fastapi import PerformanceMiddleware

    app = FastAPI()

    @app.get("/m/{n}")
    async def pi(n: int) -> dict[str, int]:
        return {"n": _omicron(n)}

    app.add_middleware(PerformanceMiddleware, **{**sdk_settings, "track_memory": True})
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/m/2000").status_code == 200
        _flush()
    (record,) = stored_records(store, project["project_key"], 1)
    _check_allocations(record, 2000)
