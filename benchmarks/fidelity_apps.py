"""The apps and servers of ``capture_fidelity.py``: source written to a directory, served from it.

A FastAPI app, a Flask app and a Django project (one settings module, an
ASGI and a WSGI entry point) share plain helper modules: ``svc_common``
(CPU work, the 8 helper coroutines, a raising chain, an allocating function)
and ``svc_rows`` (a SQLAlchemy model on SQLite and an N+1 loop). Function
names say nothing about what the functions do; :data:`ENDPOINTS` says which
function serves each route prefix. Each server of :data:`SERVERS` imports
them from the directory :func:`write_apps` filled.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

#: The 8 helper coroutines; a request for /a/<k> awaits KINDS[k % 8].
KINDS = ["alder", "birch", "cedar", "damson", "elder", "fir", "gorse", "hazel"]
CONCURRENCY = len(KINDS)
#: What the raising endpoint's exceptions say, as stored (the secret redacted).
MESSAGES = {
    "LookupError": "no {n} for password=[Filtered] here",
    "ZeroDivisionError": "division by zero",
}

# -- the apps ------------------------------------------------------------------------

COMMON = (
    textwrap.dedent(
        """
    import asyncio
    import time


    def knot(seconds):
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            pass

    """
    )
    + "\n".join(
        textwrap.dedent(
            f"""
        async def {name}(n):
            await asyncio.sleep(0.010)
            knot(0.003)
            await asyncio.sleep(0.004)
            return n
        """
        )
        for name in KINDS
    )
    + textwrap.dedent(
        f"""

    KINDS = [{", ".join(KINDS)}]


    def _iota(n):
        if n % 2:
            return n / (n - n)
        raise LookupError(f"no {{n}} for password=hunter2 here")


    def _theta(n):
        knot(0.003)
        return _iota(n) + 1


    _HELD = []


    def _omicron(n):
        _HELD.append([bytes(1000) + bytes([i % 256]) for i in range(n)])
        return len(_HELD)
    """
    )
)

ROWS = textwrap.dedent(
    """
    import os

    from performance_monitor.sqlalchemy import instrument_engine
    from sqlalchemy import String, create_engine, func, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


    class Base(DeclarativeBase):
        pass


    class Leaf(Base):
        __tablename__ = "leaf"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(40))


    engine = create_engine(
        f"sqlite:///{os.environ['SVC_DB']}", connect_args={"check_same_thread": False}
    )
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        if not session.scalar(select(func.count()).select_from(Leaf)):
            session.add_all([Leaf(name=f"leaf{i}") for i in range(1, 41)])
            session.commit()
    instrument_engine(engine)


    def _rill(k):
        names = []
        with Session(engine) as session:
            for i in range(1, k + 1):
                names.append(session.execute(select(Leaf).where(Leaf.id == i)).scalar_one().name)
        return names
    """
)

FASTAPI_APP = textwrap.dedent(
    """
    import asyncio

    from fastapi import FastAPI, HTTPException
    from performance_monitor.fastapi import PerformanceMiddleware

    from svc_common import KINDS, _omicron, _theta, knot
    from svc_rows import _rill

    app = FastAPI()


    @app.get("/ready")
    async def ready():
        return {}


    @app.get("/a/{k}")
    async def heron(k: int):
        await asyncio.sleep(0.004)
        return {"v": await KINDS[k % 8](k)}


    @app.get("/e/{n}")
    async def plover(n: int):
        return {"n": _theta(n)}


    @app.get("/h/{n}")
    async def tern(n: int):
        knot(0.003)
        raise HTTPException(404, "gone")


    @app.get("/s/{k}")
    def linnet(k: int):
        return {"n": len(_rill(k))}


    @app.get("/m/{n}")
    async def wagtail(n: int):
        return {"n": _omicron(n)}


    @app.get("/w/{n}")
    def swift(n: int, s: float = 0.001):
        knot(s)
        return {"n": n}


    app.add_middleware(PerformanceMiddleware)
    """
)

FLASK_APP = textwrap.dedent(
    """
    from flask import Flask, abort, request
    from performance_monitor.flask import PerformanceMiddleware
    from performance_monitor.flask.decorators import monitor_performance

    from svc_common import _omicron, _theta, knot
    from svc_rows import _rill

    app = Flask(__name__)


    @app.get("/ready")
    def ready():
        return {}


    @app.get("/e/<int:n>")
    def plover(n):
        return {"n": _theta(n)}


    @app.get("/h/<int:n>")
    def tern(n):
        knot(0.003)
        abort(404)


    @app.get("/s/<int:k>")
    def linnet(k):
        return {"n": len(_rill(k))}


    @app.get("/m/<int:n>")
    def wagtail(n):
        return {"n": _omicron(n)}


    @app.get("/w/<int:n>")
    def swift(n):
        knot(float(request.args.get("s", "0.001")))
        return {"n": n}


    @app.get("/d/<int:n>")
    @monitor_performance(custom_tags={"k": "v"})
    def dunlin(n):
        knot(0.002)
        return {"n": n}


    PerformanceMiddleware(app)
    """
)

DJANGO_FILES = {
    "grove/__init__.py": "",
    "grove/models.py": textwrap.dedent(
        """
        from django.db import models


        class Leaf(models.Model):
            name = models.CharField(max_length=40)

            class Meta:
                app_label = "grove"
        """
    ),
    "grove/settings.py": textwrap.dedent(
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
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SVC_DB"]}
        }
        USE_TZ = True
        LOGGING = {"version": 1, "disable_existing_loggers": False}
        PERFORMANCE_MONITOR = json.loads(os.environ["GROVE_MONITOR"])
        """
    ),
    "grove/site.py": textwrap.dedent(
        """
        import asyncio
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "grove.settings")

        import django

        django.setup()

        from django.db import connection
        from django.http import Http404, JsonResponse
        from django.urls import path
        from performance_monitor.django.decorators import monitor_view

        from grove.models import Leaf
        from svc_common import KINDS, _omicron, _theta, knot


        def _brook(k):
            names = []
            for i in range(1, k + 1):
                names.append(Leaf.objects.get(pk=i).name)
            return names


        async def _abrook(k):
            names = []
            for i in range(1, k + 1):
                names.append((await Leaf.objects.aget(pk=i)).name)
            return names


        async def ready(request):
            return JsonResponse({})


        async def heron(request, k):
            await asyncio.sleep(0.004)
            return JsonResponse({"v": await KINDS[k % 8](k)})


        def plover(request, n):
            return JsonResponse({"n": _theta(n)})


        def tern(request, n):
            knot(0.003)
            raise Http404("gone")


        def linnet(request, k):
            return JsonResponse({"n": len(_brook(k))})


        async def pipit(request, k):
            return JsonResponse({"n": len(await _abrook(k))})


        def wagtail(request, n):
            return JsonResponse({"n": _omicron(n)})


        def swift(request, n):
            knot(float(request.GET.get("s", "0.001")))
            return JsonResponse({"n": n})


        @monitor_view(custom_tags={"k": "v"})
        def dunlin(request, n):
            knot(0.002)
            return JsonResponse({"n": n})


        urlpatterns = [
            path("ready", ready),
            path("a/<int:k>", heron),
            path("e/<int:n>", plover),
            path("h/<int:n>", tern),
            path("s/<int:k>", linnet),
            path("t/<int:k>", pipit),
            path("m/<int:n>", wagtail),
            path("w/<int:n>", swift),
            path("d/<int:n>", dunlin),
        ]

        if "grove_leaf" not in connection.introspection.table_names():
            with connection.schema_editor() as editor:
                editor.create_model(Leaf)
            Leaf.objects.bulk_create([Leaf(name=f"leaf{i}") for i in range(1, 41)])
        connection.close()
        """
    ),
    "grove/asgi.py": "import grove.site  # noqa\n"
    "from django.core.asgi import get_asgi_application\n\n"
    "application = get_asgi_application()\n",
    "grove/wsgi.py": "import grove.site  # noqa\n"
    "from django.core.wsgi import get_wsgi_application\n\n"
    "application = get_wsgi_application()\n",
}

#: The endpoint function behind each route prefix: where a tree should open.
ENDPOINTS = {
    "a": "heron",
    "e": "plover",
    "h": "tern",
    "s": "linnet",
    "t": "pipit",
    "m": "wagtail",
    "w": "swift",
    "d": "dunlin",
}


def write_apps(directory: Path) -> None:
    files = {
        "svc_common.py": COMMON,
        "svc_rows.py": ROWS,
        "svc_fast.py": FASTAPI_APP,
        "svc_flask.py": FLASK_APP,
        **DJANGO_FILES,
    }
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)


def _uvicorn(target: str, loop: str = "asyncio") -> list[str]:
    return ["uvicorn", target, "--host", "127.0.0.1", "--port", "{port}", "--loop", loop]


SERVERS: dict[str, tuple[str, list[str]]] = {
    # name: (framework, command); {port} is filled in.
    "fastapi/uvicorn": ("fastapi", _uvicorn("svc_fast:app")),
    "fastapi/uvicorn-uvloop": ("fastapi", _uvicorn("svc_fast:app", "uvloop")),
    "fastapi/hypercorn": ("fastapi", ["hypercorn", "svc_fast:app", "-b", "127.0.0.1:{port}"]),
    "fastapi/gunicorn-uvicorn": (
        "fastapi",
        ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "1"]
        + ["-b", "127.0.0.1:{port}", "svc_fast:app"],
    ),
    "django-asgi/uvicorn": ("django", _uvicorn("grove.asgi:application")),
    "django-asgi/hypercorn": (
        "django",
        ["hypercorn", "grove.asgi:application", "-b", "127.0.0.1:{port}"],
    ),
    "flask/gunicorn": ("flask", ["gunicorn", "-w", "1", "-b", "127.0.0.1:{port}", "svc_flask:app"]),
    "django-wsgi/gunicorn": (
        "django",
        ["gunicorn", "-w", "1", "-b", "127.0.0.1:{port}", "grove.wsgi:application"],
    ),
}
