"""Django under a real ASGI server: ``async def`` views are profiled on the event loop.

A Django project written here (settings, a model on SQLite, an async view
awaiting a helper coroutine that sleeps, burns CPU and uses the async ORM and
``sync_to_async``, and a sync view running queries) is served by uvicorn
through Django's ASGI handler. Per stored record: the tree's root covers
``total_duration`` within 5 %, the helper is in it under the view, the route
is Django's template, ``query_count`` equals the ORM calls the view made and
each statement's call site is the application function that ran or awaited it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pystrument_lab.embedded import free_port

from .helpers import wait_until

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[3]

MODELS = textwrap.dedent(
    """
    from django.db import models


    class Leaf(models.Model):
        name = models.CharField(max_length=40)

        class Meta:
            app_label = "grove"
    """
)

SETTINGS = textwrap.dedent(
    """
    import json
    import os

    DEBUG = False
    SECRET_KEY = "not-secret"
    ALLOWED_HOSTS = ["*"]
    ROOT_URLCONF = "grove.site"
    INSTALLED_APPS = ["grove"]
    MIDDLEWARE = [
        "performance_monitor.django.PerformanceMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["GROVE_DB"]}
    }
    USE_TZ = True
    PERFORMANCE_MONITOR = json.loads(os.environ["GROVE_MONITOR"])
    """
)

SITE = textwrap.dedent(
    """
    import asyncio
    import os
    import time

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "grove.settings")

    import django

    django.setup()

    from asgiref.sync import sync_to_async
    from django.db import connection
    from django.http import JsonResponse
    from django.urls import path

    from grove.models import Leaf


    def tally(seconds):
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            pass


    def names_upto(n):
        return list(Leaf.objects.filter(pk__lte=n).values_list("name", flat=True))


    async def quill(n):
        await asyncio.sleep(0.02)
        tally(0.006)
        total = await Leaf.objects.acount()
        for i in range(n % 3 + 1):
            await Leaf.objects.aget(pk=i + 1)
        names = await sync_to_async(names_upto)(n)
        return total + len(names)


    async def first(request, n):
        return JsonResponse({"v": await quill(n)})


    def second(request, n):
        tally(0.004)
        found = 0
        for i in range(n % 4 + 1):
            found += Leaf.objects.filter(pk=i + 1).count()
        return JsonResponse({"v": found})


    async def ready(request):
        return JsonResponse({})


    urlpatterns = [
        path("ready", ready),
        path("q/<int:n>", first),
        path("s/<int:n>", second),
    ]

    with connection.schema_editor() as editor:
        editor.create_model(Leaf)
    Leaf.objects.bulk_create([Leaf(name=f"leaf{i}") for i in range(1, 41)])
    connection.close()

    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
    """
)
ROUNDS = 30  # an async and a sync request one after the other, then the two at once


@pytest.fixture
def served(sdk_settings: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    package = tmp_path / "grove"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS)
    (package / "settings.py").write_text(SETTINGS)
    (package / "site.py").write_text(SITE)
    port = free_port()
    command = [str(BIN / "uvicorn"), "grove.site:application", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--loop", "asyncio"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSTRUMENT_")}
    monitor = {key.upper(): value for key, value in sdk_settings.items()}
    env.update(
        GROVE_DB=str(tmp_path / "grove.sqlite3"),
        GROVE_MONITOR=json.dumps({**monitor, "REMOTE_CONFIG": False}),
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()}")
            try:
                return httpx.get(url + "/ready", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_until(up, timeout=30, interval=0.1), log.read_text()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _children(nodes: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes if n["parent_call_id"] == parent["call_id"]]


def _outline(nodes: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{'  ' * n['depth']}{n['function_name']} {n['duration'] * 1000:.1f} ms"
        for n in nodes
        if n["duration"] > 0.001
    )


def _named(nodes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [n for n in nodes if n["function_name"] == name]


def test_django_async_and_sync_views_under_uvicorn(
    served: str, store: Any, project: dict[str, Any]
) -> None:
    barrier = threading.Barrier(2)

    def together(path: str) -> int:
        with httpx.Client(timeout=10) as client:
            barrier.wait()
            return client.get(served + path).json()["v"]

    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(2) as pool:
        for i in range(1, ROUNDS + 1):
            # acount() sees 40 leaves, names_upto(i) i of them.
            assert client.get(f"{served}/q/{i}").json() == {"v": 40 + i}
            assert client.get(f"{served}/s/{i}").json() == {"v": i % 4 + 1}
            # The same two served at the same time: each tree holds only its own view.
            pair = list(pool.map(together, [f"/q/{i}", f"/s/{i}"]))
            assert pair == [40 + i, i % 4 + 1]
    key = project["project_key"]

    def served_records() -> list[dict[str, Any]]:
        found = [r for r in store.records.find({"project_key": key}) if r["route"] != "/ready"]
        return found if len(found) >= 4 * ROUNDS else []

    records = wait_until(served_records, timeout=30) or served_records()
    assert len(records) == 4 * ROUNDS
    assert sorted({r["route"] for r in records}) == ["/q/<int:n>", "/s/<int:n>"]

    def tree_documents() -> list[dict[str, Any]]:
        found = list(store.call_trees.find({"project_key": key}))
        return found if len(found) >= len(records) else []

    documents = {d["trace_id"]: d for d in wait_until(tree_documents, timeout=30)}
    coverage: dict[str, list[float]] = {"/q/<int:n>": [], "/s/<int:n>": []}
    helpers = 0
    short: list[str] = []
    for record in records:
        n = int(record["path"].rsplit("/", 1)[1])
        nodes = documents[record["trace_id"]]["nodes"]
        total = record["performance_metrics"]["total_duration"]
        queries = record["performance_metrics"]["database_metrics"]["query_count"]
        coverage[record["route"]].append(nodes[0]["duration"] / total)
        if abs(nodes[0]["duration"] - total) > 0.05 * total:
            short.append(f"{record['path']}: {total=}\n{_outline(nodes)}")
        assert record["status_code"] == 200
        if record["route"] == "/s/<int:n>":
            assert queries == n % 4 + 1, record["path"]
            (view,) = _named(nodes, "second")
            assert view["is_application"] and _named(_children(nodes, view), "tally")
            assert not _named(nodes, "quill") and not _named(nodes, "first"), record["path"]
            continue
        # acount, one aget per loop turn, and the sync_to_async query.
        assert queries == 1 + (n % 3 + 1) + 1, record["path"]
        # The async ORM runs each query in a worker thread with no application frame:
        # its call site is where quill awaited it; names_upto ran in the thread itself.
        items = record["performance_metrics"]["database_metrics"]["statements"]["items"]
        sites = sorted((s["call_site"] or {}).get("function", "") for s in items)
        assert sites == ["names_upto", "quill", "quill"], "; ".join(
            f"{s['statement'][:40]}: {s['call_site']}" for s in items
        )
        (loop,) = [s for s in items if s["statement"].endswith("LIMIT ?")]
        assert loop["count"] == n % 3 + 1 and loop["call_site"]["file"].endswith("site.py")
        (view,) = _named(nodes, "first")
        opened = nodes[documents[record["trace_id"]]["application_root"]]
        assert opened["function_name"] == "first", _outline(nodes)
        (helper,) = [c for c in _children(nodes, view) if c["function_name"] == "quill"]
        assert helper["is_application"] and _named(_children(nodes, helper), "tally")
        # It slept 20 ms (a timer may fire up to 1 ms early) and tallied 6 ms.
        if helper["duration"] < 0.025:
            pytest.fail(f"{record['path']}: quill too short\n{_outline(nodes)}")
        assert any(
            n["function_name"] == "[await]" and n["depth"] > helper["depth"] for n in nodes
        ), record["path"]
        assert not _named(nodes, "second"), f"{record['path']} holds the sync request's view"
        helpers += 1
    for route, values in coverage.items():
        print(
            f"\n{route}: {len(values)} trees, coverage median {statistics.median(values):.3f}, "
            f"min {min(values):.3f}, max {max(values):.3f}"
        )
    print(f"helper in {helpers}/{2 * ROUNDS} async trees")
    assert not short, "\n".join(short)
