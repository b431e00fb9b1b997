"""The SQL hooks cost an unsampled request one check per statement, and count every sampled one.

Call counts, not times: the SDK's statement bookkeeping (``add_query``, the
rows wrapper) and, for Django, the ``execute_wrapper`` itself must not run
for an unsampled request; SQLAlchemy's event machinery must stay off.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from performance_monitor.core import request as request_module
from performance_monitor.core import rows as rows_module

from tests.utils.sink import Sink

from .apps import django_app

STATEMENTS = 3


def _counting(monkeypatch: pytest.MonkeyPatch, calls: Counter[str], owner: Any, name: str) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def _get(app: Callable[..., Any], path: str) -> bytes:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    statuses: list[str] = []
    result = app(environ, lambda status, headers, *args: statuses.append(status))
    body = b"".join(result)
    getattr(result, "close", lambda: None)()
    assert statuses[0].startswith("200"), statuses
    return body


def _settings(sink: Sink, rate: float) -> dict[str, Any]:
    return {
        "project_key": "pk",
        "api_endpoint": sink.url,
        "sampling_rate": rate,
        "remote_config": False,
    }


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_sqlalchemy_hooks_do_nothing_unsampled_and_count_sampled_statements(
    sink: Sink, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, rate: float
) -> None:
    import performance_monitor
    from flask import Flask
    from performance_monitor.flask import PerformanceMiddleware
    from performance_monitor.sqlalchemy import instrument_engine
    from sqlalchemy import create_engine, text

    engine = instrument_engine(create_engine(f"sqlite:///{tmp_path / 'hooks.sqlite3'}"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t (n) VALUES (:n)"), [{"n": 1}, {"n": 2}])
    app = Flask("hooks")

    @app.get("/q")
    def q() -> dict[str, int]:
        with engine.connect() as conn:
            total = sum(conn.execute(text("SELECT n FROM t WHERE n > :m"), {"m": 0}).scalars())
            total += conn.execute(text("SELECT COUNT(*) FROM t")).scalar_one()
            conn.exec_driver_sql("SELECT 1")
        return {"total": total}

    PerformanceMiddleware(app, _settings(sink, rate))
    calls: Counter[str] = Counter()
    _counting(monkeypatch, calls, request_module.RequestState, "add_query")
    _counting(monkeypatch, calls, request_module.RequestState, "add_fetch")
    monkeypatch.setattr(
        "performance_monitor.sqlalchemy.timed_rows",
        lambda *args: calls.update(["timed_rows"]) or rows_module.timed_rows(*args),
    )
    assert _get(app, "/q") == b'{"total":5}\n'
    # No engine event listener: SQLAlchemy's event machinery stays off for this engine.
    assert not engine._has_events and not engine.dialect._has_events
    assert performance_monitor.flush(5)
    if rate == 0.0:
        assert calls == Counter()
        assert sink.records() == []
    else:
        assert calls["add_query"] == STATEMENTS and calls["timed_rows"] == STATEMENTS
        assert calls["add_fetch"] >= 2  # the two SELECTs' rows were read through the wrapper
        (record,) = sink.records()
        assert record["performance_metrics"]["database_metrics"]["query_count"] == STATEMENTS


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_django_execute_wrapper_is_entered_only_for_sampled_requests(
    sink: Sink, monkeypatch: pytest.MonkeyPatch, rate: float
) -> None:
    import performance_monitor
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings
    from performance_monitor.django import instrumentation, middleware

    django_app.setup()
    calls: Counter[str] = Counter()
    _counting(monkeypatch, calls, instrumentation, "_sql_wrapper")
    _counting(monkeypatch, calls, middleware, "track_queries")
    _counting(monkeypatch, calls, request_module.RequestState, "add_query")
    settings = {k.upper(): v for k, v in _settings(sink, rate).items()}
    with override_settings(
        MIDDLEWARE=[django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE],
        PERFORMANCE_MONITOR=settings,
    ):
        body = _get(WSGIHandler(), "/items")
    assert body.startswith(b"{")
    assert performance_monitor.flush(5)
    if rate == 0.0:
        assert calls == Counter()
    else:
        assert calls["track_queries"] == 1
        assert calls["_sql_wrapper"] == calls["add_query"] >= 1
