"""The apps and the monitoring variants that ``benchmarks/sdk_overhead.py`` measures.

Each framework has a trivial endpoint (``/ping`` returns ``ok``) and a
realistic one (``/items``: 5 SQLite queries of 10 rows, 50 rows as JSON) —
through SQLAlchemy for Flask and FastAPI, through the Django ORM for Django.
``build_app(framework, variant, ...)`` returns the WSGI/ASGI callable of one
variant:

- ``bare``: the app alone;
- ``sdk-0`` / ``sdk-100``: ``performance_monitor`` at 0 % / 100 % sampling;
- ``pyinstrument``: each request under a bare ``pyinstrument.Profiler``;
- ``sentry``: built after :func:`start_sentry` (sentry-sdk instruments globally);
- ``otel``: OpenTelemetry's official instrumentation of the framework (and of
  SQLAlchemy, or of sqlite3 for Django), traces only, into an SDK
  ``TracerProvider`` whose ``BatchSpanProcessor`` exports to memory.

Django's settings are process-wide: the first Django app of a process
configures them and its database; each variant's handler is built with its
own ``MIDDLEWARE`` and ``PERFORMANCE_MONITOR``, which Django reads when the
handler loads its middleware.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

ENDPOINTS = {"trivial": "/ping", "realistic": "/items"}
# The fewest spans a request must leave with the otel variant (server span; 5 queries).
OTEL_MIN_SPANS = {"trivial": 1, "realistic": 6}


def sdk_settings(variant: str, sink_url: str) -> dict[str, Any]:
    return {
        "project_key": "bench",
        "api_endpoint": sink_url,
        "sampling_rate": 1.0 if variant == "sdk-100" else 0.0,
        "remote_config": False,
        "app_version": "bench",
        "git_commit": "bench",
    }


# -- global instrumentation: sentry, OpenTelemetry ------------------------------------


def start_sentry(sink_url: str) -> None:
    """sentry-sdk with traces and profiles at 100 %, its DSN on the local sink."""
    import sentry_sdk

    port = sink_url.rsplit(":", 1)[1]
    sentry_sdk.init(
        dsn=f"http://public@127.0.0.1:{port}/1",
        traces_sample_rate=1.0,
        profiles_sample_rate=1.0,
        send_default_pii=False,
    )


class OtelTraces:
    """The global SDK ``TracerProvider``: a ``BatchSpanProcessor`` into an in-memory exporter.

    The batch processor is the one OpenTelemetry's docs recommend for production: spans
    are queued on the request thread and exported by a worker thread, as the
    SDK's sender does with records. No ``MeterProvider`` is set, so the
    instrumentations' metrics go to the API's no-op meter (traces only).
    """

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        trace.set_tracer_provider(self.provider)

    def drain(self) -> int:
        """Export what is queued, then forget it; the number of spans exported since last time."""
        self.provider.force_flush(30_000)
        count = len(self.exporter.get_finished_spans())
        self.exporter.clear()
        return count


_otel: OtelTraces | None = None


def otel_traces() -> OtelTraces:
    global _otel
    if _otel is None:
        _otel = OtelTraces()
    return _otel


def drain(variant: str) -> int:
    """Wait for the variant's background sending (untimed, between timed blocks).

    Returns the number of spans exported since the last drain for ``otel``, 0 otherwise.
    """
    if variant.startswith("sdk"):
        import performance_monitor

        performance_monitor.flush(30)
    elif variant == "sentry":
        import sentry_sdk

        sentry_sdk.flush(30)
    elif variant == "otel":
        return otel_traces().drain()
    return 0


# -- Flask and FastAPI, SQL through SQLAlchemy ----------------------------------------


def items_engine(db: str) -> Any:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{db}", connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        )
        if not conn.execute(text("SELECT COUNT(*) FROM items")).scalar():
            rows = ",".join(f"('item{i}', {i * 1.5})" for i in range(200))
            conn.execute(text("INSERT INTO items (name, price) VALUES " + rows))
    return engine


def query_items(engine: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    items = []
    with engine.connect() as conn:
        for offset in range(0, 50, 10):
            rows = conn.execute(
                text("SELECT id, name, price FROM items LIMIT 10 OFFSET :o"), {"o": offset}
            )
            items.extend({"id": r[0], "name": r[1], "price": r[2]} for r in rows)
    return items


def _instrument_engine_otel(engine: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    otel_traces()
    # The package declares SQLAlchemy < 2.1 and otherwise instruments nothing
    # on 2.1; its engine events are the same there.
    SQLAlchemyInstrumentor().instrument(engine=engine, skip_dep_check=True)


def flask_app(variant: str, sink_url: str, db: str) -> Any:
    from flask import Flask, jsonify

    app = Flask(__name__)
    engine = items_engine(db)

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.get("/items")
    def items() -> Any:
        return jsonify(items=query_items(engine))

    if variant.startswith("sdk"):
        from performance_monitor.flask.middleware import PerformanceMiddleware
        from performance_monitor.sqlalchemy import instrument_engine

        instrument_engine(engine)
        PerformanceMiddleware(app, sdk_settings(variant, sink_url))
    elif variant == "pyinstrument":
        from pyinstrument import Profiler

        inner = app.wsgi_app

        def profiled(environ: Any, start_response: Any) -> Any:
            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
            try:
                return list(inner(environ, start_response))
            finally:
                profiler.stop()

        app.wsgi_app = profiled  # type: ignore[method-assign]
    elif variant == "otel":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        _instrument_engine_otel(engine)
        FlaskInstrumentor().instrument_app(app)
    return app


def fastapi_app(variant: str, sink_url: str, db: str) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()
    engine = items_engine(db)

    @app.get("/ping", response_class=PlainTextResponse)
    async def ping() -> str:
        return "ok"

    @app.get("/items")
    def items() -> dict[str, Any]:
        return {"items": query_items(engine)}

    if variant.startswith("sdk"):
        from performance_monitor.fastapi import PerformanceMiddleware
        from performance_monitor.sqlalchemy import instrument_engine

        instrument_engine(engine)
        app.add_middleware(PerformanceMiddleware, **sdk_settings(variant, sink_url))
    elif variant == "pyinstrument":
        from pyinstrument import Profiler

        class ProfilerMiddleware:
            def __init__(self, app: Any) -> None:
                self.app = app

            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                profiler = Profiler(interval=0.001, async_mode="enabled")
                profiler.start()
                try:
                    await self.app(scope, receive, send)
                finally:
                    profiler.stop()

        app.add_middleware(ProfilerMiddleware)
    elif variant == "otel":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        _instrument_engine_otel(engine)
        FastAPIInstrumentor.instrument_app(app)
    return app


# -- Django, SQL through the ORM ------------------------------------------------------

DJANGO_URLS = "bench_django_urls"  # ROOT_URLCONF: a module made in memory by _django_setup


class PyinstrumentMiddleware:
    """Each request under a bare pyinstrument Profiler, first in MIDDLEWARE as the SDK's is."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        try:
            return self.get_response(request)
        finally:
            profiler.stop()


def _django_setup(db: str) -> None:
    """Configure Django once per process: no app or middleware of its own, one SQLite database.

    The database connection persists (``CONN_MAX_AGE=None``), as SQLAlchemy's
    pool keeps one for Flask and FastAPI; Django's default would open a new
    one per request.
    """
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=DJANGO_URLS,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db, "CONN_MAX_AGE": None}
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection, models
    from django.http import HttpResponse, JsonResponse
    from django.urls import path

    class Item(models.Model):
        name = models.TextField()
        price = models.FloatField()

        class Meta:
            app_label = "bench"
            db_table = "items"

    def ping(request: Any) -> Any:
        return HttpResponse("ok", content_type="text/plain")

    def items(request: Any) -> Any:
        rows: list[dict[str, Any]] = []
        for offset in range(0, 50, 10):
            rows.extend(Item.objects.values("id", "name", "price")[offset : offset + 10])
        return JsonResponse({"items": rows})

    urls = types.ModuleType(DJANGO_URLS)
    urls.urlpatterns = [path("ping", ping), path("items", items)]  # type: ignore[attr-defined]
    sys.modules[DJANGO_URLS] = urls
    with connection.schema_editor() as editor:
        editor.create_model(Item)
    Item.objects.bulk_create(Item(name=f"item{i}", price=i * 1.5) for i in range(200))


def django_app(variant: str, sink_url: str, db: str) -> Any:
    from django.conf import settings

    _django_setup(db)
    from django.core.handlers.wsgi import WSGIHandler

    settings.MIDDLEWARE = []
    settings.PERFORMANCE_MONITOR = {}
    if variant.startswith("sdk"):
        settings.MIDDLEWARE = ["performance_monitor.django.PerformanceMiddleware"]
        settings.PERFORMANCE_MONITOR = {
            key.upper(): value for key, value in sdk_settings(variant, sink_url).items()
        }
    elif variant == "pyinstrument":
        settings.MIDDLEWARE = [f"{__name__}.PyinstrumentMiddleware"]
    elif variant == "otel":
        # The Django instrumentation has no database spans of its own (its
        # sqlcommenter only adds comments to the SQL): the official sqlite3
        # instrumentation gives them, on connections opened after it.
        from django.db import connections
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        otel_traces()
        DjangoInstrumentor().instrument()  # puts its middleware first in settings.MIDDLEWARE
        SQLite3Instrumentor().instrument()
        connections.close_all()
    return WSGIHandler()


BUILDERS = {"flask": flask_app, "fastapi": fastapi_app, "django": django_app}


def build_app(framework: str, variant: str, sink_url: str, db: str) -> Any:
    return BUILDERS[framework](variant, sink_url, db)


def add_route(framework: str, app: Any, route: str, view: Callable[[], str]) -> None:
    """A plain-text GET route added after the variant's middleware (before the first request)."""
    if framework == "flask":
        app.add_url_rule(route, route.strip("/"), view)
    elif framework == "fastapi":
        from fastapi.responses import PlainTextResponse

        app.add_api_route(route, view, response_class=PlainTextResponse)
    else:
        from django.http import HttpResponse
        from django.urls import path

        sys.modules[DJANGO_URLS].urlpatterns.append(
            path(route.strip("/"), lambda request: HttpResponse(view()))
        )
