"""A statement's time includes fetching its rows (sqlite steps through them as they are read)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from .apps import django_app
from .helpers import stored_records
from .servers import serve_wsgi

django_app.setup()

#: Seconds sqlite spends on each row it reads (a planted per-row cost).
PER_ROW = 0.01
ROWS = 20
SCAN = "SELECT id FROM items WHERE phi(id) > ? AND id <= ?"


def _upsilon(value: int) -> int:
    time.sleep(PER_ROW)
    return value


def _flush() -> None:
    from performance_monitor.core.monitor import all_monitors

    for monitor in all_monitors():
        assert monitor.flush(5)


def _check(record: dict[str, Any]) -> None:
    database = record["performance_metrics"]["database_metrics"]
    (item,) = [s for s in database["statements"]["items"] if s["statement"] == SCAN]
    # execute() reads up to the first row (one call of phi); the other 19 are read
    # by the fetches, and count in the statement's time.
    assert item["count"] == 1
    assert item["total_duration"] >= ROWS * PER_ROW
    assert item["max_duration"] == item["total_duration"]
    assert database["query_time"] >= ROWS * PER_ROW
    (slow,) = [q for q in database["slow_queries"] if q["statement"].startswith("SELECT id")]
    assert slow["duration"] == item["total_duration"]


# -- SQLAlchemy under Flask ----------------------------------------------------------


def test_sqlalchemy_statement_time_covers_fetching_its_rows(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any], tmp_path: Any
) -> None:
    from flask import Flask
    from performance_monitor.flask import PerformanceMiddleware
    from performance_monitor.sqlalchemy import instrument_engine
    from sqlalchemy import create_engine, event, text

    engine = create_engine(
        f"sqlite:///{tmp_path / 'rows.sqlite3'}", connect_args={"check_same_thread": False}
    )
    event.listen(engine, "connect", lambda raw, _: raw.create_function("phi", 1, _upsilon))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
        for i in range(50):
            conn.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": f"i{i}"})
    instrument_engine(engine)
    app = Flask("rows")

    @app.route("/s/<int:n>")
    def chi(n: int) -> dict[str, int]:
        with engine.connect() as conn:
            rows = [row[0] for row in conn.exec_driver_sql(SCAN, (0, n))]
        return {"n": len(rows)}

    PerformanceMiddleware(app, {**sdk_settings, "slow_query_threshold": 0.1})
    with serve_wsgi(app) as url:
        assert httpx.get(f"{url}/s/{ROWS}", timeout=30).json() == {"n": ROWS}
        _flush()
    (record,) = stored_records(store, project["project_key"], 1)
    _check(record)


# -- Django through its WSGI handler -------------------------------------------------


def omega(request: Any, n: int) -> Any:
    from django.db import connection
    from django.http import JsonResponse

    connection.ensure_connection()
    connection.connection.create_function("phi", 1, _upsilon)
    found = []
    with connection.cursor() as cursor:
        cursor.execute(SCAN.replace("?", "%s"), [0, n])
        while chunk := cursor.fetchmany(6):
            found.extend(chunk)
    return JsonResponse({"n": len(found)})


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        from django.urls import path

        return [path("s/<int:n>", omega)]
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


def test_django_statement_time_covers_fetching_its_rows(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    with _django({**sdk_settings, "slow_query_threshold": 0.1}) as url:
        assert httpx.get(f"{url}/s/{ROWS}", timeout=30).json() == {"n": ROWS}
        _flush()
    (record,) = stored_records(store, project["project_key"], 1)
    _check(record)
