"""A small real Django service (SQLite, raw SQL through the connection) for the SDK tests.

Django settings are process-wide: :func:`setup` configures them once; tests
switch the SDK on and off with ``override_settings``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

SLEEP = 0.05
BASE_MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
SDK_MIDDLEWARE = "performance_monitor.django.PerformanceMiddleware"


def setup(db_path: Path | None = None) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    db_path = db_path or Path(tempfile.mkdtemp(prefix="sdk-django-")) / "db.sqlite3"
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=BASE_MIDDLEWARE,
        INSTALLED_APPS=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db_path)}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "OPTIONS": {
                    "loaders": [
                        (
                            "django.template.loaders.locmem.Loader",
                            {
                                "page.html": "<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>"
                            },
                        )
                    ]
                },
            }
        ],
        PERFORMANCE_MONITOR=dict(json_env()),
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)")
        cursor.execute("SELECT COUNT(*) FROM items")
        if not cursor.fetchone()[0]:
            cursor.executemany(
                "INSERT INTO items (name) VALUES (%s)", [(f"item{i}",) for i in range(50)]
            )


def json_env() -> dict[str, Any]:
    """SDK settings from the environment (for gunicorn runs): PYSTRUMENT_* → upper-case keys."""
    return {
        k[len("PYSTRUMENT_") :]: v for k, v in os.environ.items() if k.startswith("PYSTRUMENT_")
    }


# -- views -------------------------------------------------------------------------------


def get_user(request: Any, user_id: int) -> Any:
    from django.http import JsonResponse

    time.sleep(SLEEP)
    return JsonResponse({"id": user_id, "name": f"user{user_id}"})


def _list_items(request: Any) -> Any:
    from django.core.cache import cache
    from django.db import connection
    from django.http import JsonResponse

    n = int(request.GET.get("n", "5"))
    names = []
    with connection.cursor() as cursor:
        for i in range(1, n + 1):
            cursor.execute("SELECT name FROM items WHERE id = %s", [i])
            names.append(cursor.fetchone()[0])
    cache.get("missing-key")
    cache.set("present-key", 1)
    cache.get("present-key")
    return JsonResponse({"items": names})


def page(request: Any) -> Any:
    from django.shortcuts import render

    return render(request, "page.html", {"items": range(3)})


def stream(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    return StreamingHttpResponse((f"chunk-{i}\n" for i in range(5)), content_type="text/plain")


def upload(request: Any) -> Any:
    from django.http import JsonResponse

    file = request.FILES["file"]
    data = file.read()
    return JsonResponse({"name": file.name, "size": len(data), "first": data[:10].decode()})


def boom(request: Any) -> Any:
    raise RuntimeError("boom")


def old(request: Any) -> Any:
    from django.shortcuts import redirect

    return redirect("/users/1")


def _urlpatterns() -> list[Any]:
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt
    from performance_monitor.django.decorators import monitor_view

    list_items = monitor_view(track_sql=True, custom_tags={"api_version": "v1"})(_list_items)
    return [
        path("users/<int:user_id>", get_user),
        path("items", list_items),
        path("page", page),
        path("stream", stream),
        path("upload", csrf_exempt(upload)),
        path("boom", boom),
        path("old", old),
    ]


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def wsgi_application() -> Any:
    """For gunicorn: configure from the environment and return the WSGI handler."""
    setup(Path(os.environ["TEST_DB_PATH"]))
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    settings.MIDDLEWARE = [SDK_MIDDLEWARE, *BASE_MIDDLEWARE]
    return get_wsgi_application()
