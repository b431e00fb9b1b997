"""SDK cost per request in instructions, counted by valgrind's callgrind.

Wall-clock ratios (``sdk_overhead.py``) move by ±30 % on a shared, loaded
machine: too much to see a step of a few µs. The number of instructions a
request executes does not depend on the load, so this script counts them.

Each (framework, endpoint, variant) runs in a process of its own under
``valgrind --tool=callgrind --instr-atstart=no``. The process builds the app
and warms it up uninstrumented, switches instrumentation on (callgrind
client requests, from a ten-line C helper built on first use with the
system's C compiler and ``valgrind/callgrind.h``), drives N requests straight
through the WSGI/ASGI callable as ``sdk_overhead.py`` does, dumps the count
(*request path*), then flushes the SDK and dumps again (*deferred*: what the
sender thread does — folding the aggregates, building each record, encoding,
gzip — done here in the flushing thread so that no thread runs on a clock).
Records go to a transport that does everything but open a socket: the body
is encoded, gzipped and put in a ``urllib`` request, which is then dropped.
Every point is measured for N1 and N2 requests in two processes, and a
request costs (I(N2) − I(N1)) / (N2 − N1): what is paid once cancels.
Without a C compiler the whole process is counted (slower, same formula).

What would make a count depend on the (valgrind-slowed) clock is pinned:

- pyinstrument samples on a virtual clock that every profiler event (a
  call or return) advances by ``--event-ns`` (default 150 ns, about what an
  event costs natively on these apps: the bare Flask trivial request makes
  620 events in ≈ 65 µs, 105 ns each; the FastAPI realistic one 3,700 in
  ≈ 1.5 ms, 410 ns each), so a request takes about as many samples as it
  would natively, and the same number every run. The SDK's sampling pace
  (which reads pyinstrument's own clock) is then off; it costs a comparison
  per sample;
- thresholds compared with durations (``session_min_duration``, the
  adaptive-capture and slow-query thresholds, ``max_trace_duration``) are
  set out of reach, as they are natively for these requests;
- ``PYTHONHASHSEED=0``; the sender never starts its thread (the flush
  drains in the caller).

Variants: ``bare`` (the app alone), ``sdk-0`` (0 % sampling; every request
still counted; ``instrument_engine`` on the realistic app), ``sdk-100`` (every
request profiled, the record built and encoded), ``pyinstrument`` (each
request in a bare ``pyinstrument.Profiler``, 1 ms interval, session dropped).

Run: ``python benchmarks/sdk_instructions.py [--frameworks flask fastapi django]
[--endpoints trivial realistic] [--variants bare sdk-0 sdk-100 pyinstrument]
[--jobs 2] [--out result.json] [--compare before.json] [--repeat]``.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.overhead_apps import items_engine, query_items  # noqa: E402

VARIANTS = ["bare", "sdk-0", "sdk-100", "pyinstrument"]
#: Not run unless asked: the bare app with `instrument_engine` only (what the SQL hooks cost);
#: FastAPI under pyinstrument with every function Starlette hands to a worker thread
#: profiled there too, as the SDK's sampled path does (what the SDK's record holds).
EXTRA_VARIANTS = ["bare-hooks", "pyinstrument-threads"]
FRAMEWORKS = ["flask", "fastapi", "django"]
ENDPOINTS = {"trivial": "/ping", "realistic": "/items"}
#: SDK settings given with --set, passed to the measured processes.
SETTINGS_ENV = "SDK_INSTRUCTIONS_SET"
#: (N1, N2) requests per endpoint.
COUNTS = {"trivial": (40, 120), "realistic": (10, 30)}
WARMUP = 30

_TOGGLES_C = r"""
#include <valgrind/callgrind.h>
void pm_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void pm_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
void pm_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def toggles_library() -> str | None:
    """The callgrind client-request helper, built once; None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not Path("/usr/include/valgrind/callgrind.h").is_file():
        return None
    digest = hashlib.sha1(_TOGGLES_C.encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"pm-callgrind-toggles-{digest}.so"
    if not target.is_file():
        source = target.with_suffix(".c")
        source.write_text(_TOGGLES_C)
        partial = target.with_suffix(f".{os.getpid()}.so")
        result = subprocess.run(
            [compiler, "-O1", "-shared", "-fPIC", "-o", str(partial), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return None
        partial.replace(target)
    return str(target)


# -- the apps -------------------------------------------------------------------------


def sdk_settings(variant: str) -> dict[str, Any]:
    out_of_reach = 3600.0
    return {
        "project_key": "bench",
        "api_endpoint": "http://127.0.0.1:9",
        "sampling_rate": 1.0 if variant == "sdk-100" else 0.0,
        "remote_config": False,
        "app_version": "bench",
        "git_commit": "bench",
        "deploy_time": "2026-01-01T00:00:00Z",
        "batch_size": 50,
        "batch_timeout": out_of_reach,
        "metrics_interval": out_of_reach,
        "max_queue_size": 100_000,
        "session_min_duration": out_of_reach,
        "ai_analysis_threshold": out_of_reach,
        "slow_query_threshold": out_of_reach,
        "max_trace_duration": out_of_reach,
        # --set: what one SDK feature costs, by measuring without it
        **json.loads(os.environ.get(SETTINGS_ENV, "{}")),
    }


def _profiled_wsgi(inner: Any) -> Any:
    from pyinstrument import Profiler

    def profiled(environ: Any, start_response: Any) -> Any:
        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        try:
            return list(inner(environ, start_response))
        finally:
            profiler.stop()

    return profiled


def flask_app(variant: str, db: str) -> Any:
    from flask import Flask, jsonify

    app = Flask(__name__)
    engine = items_engine(db)

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.get("/items")
    def items() -> Any:
        return jsonify(items=query_items(engine))

    if variant.startswith(("sdk", "bare-hooks")):
        from performance_monitor.sqlalchemy import instrument_engine

        instrument_engine(engine)
    if variant.startswith("sdk"):
        from performance_monitor.flask.middleware import PerformanceMiddleware

        PerformanceMiddleware(app, sdk_settings(variant))
    elif variant == "pyinstrument":
        app.wsgi_app = _profiled_wsgi(app.wsgi_app)  # type: ignore[method-assign]
    return app


def fastapi_app(variant: str, db: str) -> Any:
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

    if variant.startswith(("sdk", "bare-hooks")):
        from performance_monitor.sqlalchemy import instrument_engine

        instrument_engine(engine)
    if variant.startswith("sdk"):
        from performance_monitor.fastapi import PerformanceMiddleware

        app.add_middleware(PerformanceMiddleware, **sdk_settings(variant))
    elif variant.startswith("pyinstrument"):
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
        if variant == "pyinstrument-threads":
            _profile_worker_threads()
    return app


def _profile_worker_threads() -> None:
    """Run every function Starlette hands to ``anyio.to_thread.run_sync`` under a
    pyinstrument Profiler of its own in the worker thread: a ``def`` endpoint's
    work, which the event loop's profiler sees as ``[await]``."""
    import anyio.to_thread
    from pyinstrument import Profiler

    original = anyio.to_thread.run_sync

    async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def profiled(*inner: Any) -> Any:
            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
            try:
                return func(*inner)
            finally:
                profiler.stop()

        return await original(profiled, *args, **kwargs)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]


def django_app(variant: str, db: str) -> Any:
    """A Django WSGI app: ``/ping`` and ``/items`` (5 queries through the ORM's cursor)."""
    import django
    from django.conf import settings
    from django.http import HttpResponse, JsonResponse
    from django.urls import path

    def ping(request: Any) -> Any:
        return HttpResponse("ok")

    def items(request: Any) -> Any:
        from django.db import connection

        found = []
        with connection.cursor() as cursor:
            for offset in range(0, 50, 10):
                cursor.execute("SELECT id, name, price FROM items LIMIT 10 OFFSET %s", [offset])
                found.extend({"id": r[0], "name": r[1], "price": r[2]} for r in cursor.fetchall())
        return JsonResponse({"items": found})

    module = type(sys)("bench_django_urls")
    module.urlpatterns = [path("ping", ping), path("items", items)]  # type: ignore[attr-defined]
    sys.modules["bench_django_urls"] = module
    middleware = ["django.middleware.common.CommonMiddleware"]
    if variant.startswith("sdk"):
        middleware.insert(0, "performance_monitor.django.PerformanceMiddleware")
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="bench_django_urls",
        SECRET_KEY="bench",
        MIDDLEWARE=middleware,
        INSTALLED_APPS=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
        PERFORMANCE_MONITOR={k.upper(): v for k, v in sdk_settings(variant).items()},
        USE_TZ=True,
    )
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        rows = ",".join(f"('item{i}', {i * 1.5})" for i in range(200))
        cursor.execute("INSERT INTO items (name, price) VALUES " + rows)
    app: Any = WSGIHandler()
    if variant == "pyinstrument":
        app = _profiled_wsgi(app)
    return app


# -- drivers: call the app directly -----------------------------------------------------


def drive_wsgi(app: Any, path: str, count: int) -> None:
    base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "bench",
        "REMOTE_ADDR": "127.0.0.1",
    }

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if status[:3] != "200":
            raise RuntimeError(f"{path}: {status}")

    for _ in range(count):
        environ = dict(base, PATH_INFO=path)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close:
            close()


def asgi_driver(loop: asyncio.AbstractEventLoop) -> Callable[[Any, str, int], None]:
    def drive(app: Any, path: str, count: int) -> None:
        loop.run_until_complete(_asgi_requests(app, path, count))

    return drive


async def _asgi_requests(app: Any, path: str, count: int) -> None:
    for _ in range(count):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("bench", 80),
        }
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"{path}: {message['status']}")

        await app(scope, receive, send)


# -- in the measured process ----------------------------------------------------------


def _pin_clocks(event_ns: float) -> None:
    """pyinstrument on a virtual clock; the SDK's sender without a thread or a socket."""
    from pyinstrument import stack_sampler

    clock = itertools.count(0.0, event_ns * 1e-9).__next__
    original_init = stack_sampler.StackSampler.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.timer_func = clock

    stack_sampler.StackSampler.__init__ = init  # type: ignore[method-assign]

    from performance_monitor.core import sender, transport

    def ensure_started(self: Any) -> None:
        # The real one's test, without starting the thread: flush drains in the caller.
        if (self._thread is None or self._pid != os.getpid()) and not self._closed:
            self._thread = threading.Thread(target=self._run, daemon=True)

    def send(self: Any, request: Any) -> Any:
        return transport.Response(200)

    sender.Sender.ensure_started = ensure_started  # type: ignore[method-assign]
    transport.Transport._send = send  # type: ignore[method-assign]


def measure(framework: str, endpoint: str, variant: str, count: int, event_ns: float) -> None:
    _pin_clocks(event_ns)
    import performance_monitor

    db = os.path.join(tempfile.mkdtemp(prefix="bench-"), "items.sqlite3")
    path = ENDPOINTS[endpoint]
    if framework == "fastapi":
        loop = asyncio.new_event_loop()
        drive = asgi_driver(loop)
        app = fastapi_app(variant, db)
    else:
        drive = drive_wsgi
        app = (flask_app if framework == "flask" else django_app)(variant, db)
    drive(app, path, WARMUP)
    performance_monitor.flush(60)
    library = os.environ.get("PM_CALLGRIND_TOGGLES")
    toggles = ctypes.CDLL(library) if library else None
    if toggles is not None:
        toggles.pm_start()
    drive(app, path, count)
    if toggles is not None:
        toggles.pm_dump(b"requests")
    performance_monitor.flush(60)
    if toggles is not None:
        toggles.pm_dump(b"deferred")
        toggles.pm_stop()
    print(performance_monitor.__file__)


# -- the driver process ---------------------------------------------------------------

_TRIGGER = re.compile(r"^desc: Trigger: Client Request: (\S+)", re.M)
_TOTALS = re.compile(r"^(?:totals|summary): (\d+)", re.M)


def _counts(prefix: Path) -> dict[str, int]:
    """Ir per dump (``requests``, ``deferred``; ``process`` without client requests)."""
    found: dict[str, int] = {}
    for file in sorted(prefix.parent.glob(prefix.name + "*")):
        text = file.read_text(errors="replace")
        totals = _TOTALS.search(text)
        if totals is None:
            continue
        trigger = _TRIGGER.search(text)
        name = trigger.group(1) if trigger else "process"
        found[name] = found.get(name, 0) + int(totals.group(1))
    return found


def run_point(
    framework: str,
    endpoint: str,
    variant: str,
    count: int,
    event_ns: float,
    toggles: str | None,
    workdir: Path,
    sdk: Path = ROOT / "sdk",
) -> dict[str, int]:
    prefix = workdir / f"cg-{framework}-{endpoint}-{variant}-{count}-{os.urandom(4).hex()}"
    command = [
        "nice",
        "-n",
        "19",
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=" + str(prefix),
    ]
    if toggles is not None:
        command.append("--instr-atstart=no")
    command += [sys.executable, __file__, "--measure", framework, endpoint, variant, str(count)]
    command += ["--event-ns", str(event_ns)]
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join([str(sdk), str(ROOT)]),
        "PYINSTRUMENT_IGNORE_OVERHEAD_WARNING": "1",
    }
    env.pop("PM_CALLGRIND_TOGGLES", None)
    if toggles is not None:
        env["PM_CALLGRIND_TOGGLES"] = toggles
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    measured = (result.stdout.strip().splitlines() or [""])[-1]
    if not measured.startswith(str(sdk.resolve())):
        raise RuntimeError(f"measured {measured!r}, not the SDK in {sdk}")
    counts = _counts(prefix)
    for file in prefix.parent.glob(prefix.name + "*"):
        file.unlink()
    if toggles is None:
        return {"requests": counts["process"], "deferred": 0}
    return {"requests": counts["requests"], "deferred": counts["deferred"]}


def per_request(low: dict[str, int], high: dict[str, int], n1: int, n2: int) -> dict[str, float]:
    values = {part: (high[part] - low[part]) / (n2 - n1) for part in ("requests", "deferred")}
    values["total"] = values["requests"] + values["deferred"]
    return values


RATIOS = [
    ("sdk-0/bare", "sdk-0", "bare"),
    ("sdk-100/pyi", "sdk-100", "pyinstrument"),
    ("sdk-100/bare", "sdk-100", "bare"),
    ("pyi/bare", "pyinstrument", "bare"),
]


def report(results: dict[str, dict[str, float]], compare: dict[str, Any] | None = None) -> None:
    """One line per point: instructions per request (request path, deferred, total), then ratios."""
    print("Instructions per request (thousands): request path + deferred = total")
    print(
        f"{'framework':9} {'endpoint':10} {'variant':13} {'request':>9} {'deferred':>9} {'total':>9}"
    )
    for key, value in results.items():
        framework, endpoint, variant = key.split("/")
        line = f"{framework:9} {endpoint:10} {variant:13} "
        line += " ".join(f"{value[p] / 1e3:9.1f}" for p in ("requests", "deferred", "total"))
        if compare and key in compare:
            before = compare[key]["total"]
            line += f"   (before {before / 1e3:.1f}, {100 * (value['total'] / before - 1):+.1f} %)"
        print(line)
    print()
    print("Ratios of total instructions per request")
    print(f"{'framework':9} {'endpoint':10} " + " ".join(f"{n:>13}" for n, _, _ in RATIOS))
    points = sorted({tuple(key.split("/")[:2]) for key in results})
    for framework, endpoint in points:
        cells = []
        for _, top, bottom in RATIOS:
            a = results.get(f"{framework}/{endpoint}/{top}")
            b = results.get(f"{framework}/{endpoint}/{bottom}")
            cells.append(
                f"{a['total'] / b['total']:13.3f}" if a and b and b["total"] > 0 else f"{'-':>13}"
            )
        print(f"{framework:9} {endpoint:10} " + " ".join(cells))


def encoding_benchmark(sdk: Path, rounds: int = 15) -> None:
    """Wall-clock µs per record of encoding + gzip: the old stdlib call, the stdlib fallback, orjson.

    Records are those of the Flask realistic endpoint at 100 % sampling,
    encoded in batches of 50 as the sender posts them; the three ways run
    interleaved, medians over ``rounds``.
    """
    import gzip
    import statistics
    import time

    sys.path[:0] = [str(sdk), str(ROOT)]
    from performance_monitor.core import encoding, sender
    from performance_monitor.core.transport import gzip_bytes

    _pin_clocks(150.0)
    batches: list[Any] = []
    original = sender.Sender._post

    def keep(self: Any, path: str, payload: Any, size: int, deadline: Any) -> bool:
        if path.endswith("/collect"):
            batches.append(payload)
        return True

    sender.Sender._post = keep  # type: ignore[method-assign]
    import performance_monitor

    app = flask_app("sdk-100", os.path.join(tempfile.mkdtemp(prefix="bench-"), "items.sqlite3"))
    drive_wsgi(app, "/items", 200)
    performance_monitor.flush(60)
    sender.Sender._post = original  # type: ignore[method-assign]
    records = sum(len(batch["records"]) for batch in batches)

    def old(payload: Any) -> bytes:
        return gzip.compress(json.dumps(payload, default=str).encode("utf-8"), compresslevel=1)

    def new(payload: Any) -> bytes:
        return gzip_bytes(encoding.dumps(payload))

    def stdlib(payload: Any) -> bytes:
        encoding.use_orjson = False
        try:
            return new(payload)
        finally:
            encoding.use_orjson = encoding.orjson is not None

    ways = {"json.dumps + gzip.compress (before)": old, "stdlib fallback + zlib": stdlib}
    if encoding.orjson is not None:
        ways["orjson + zlib"] = new
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            for batch in batches:
                way(batch)
            times[name].append((time.perf_counter() - start) / records)
    size = sum(len(old(batch)) for batch in batches) / records
    print(f"{records} records of the Flask realistic endpoint, {size:.0f} gzipped bytes each")
    for name, values in times.items():
        print(f"{name:38} {statistics.median(values) * 1e6:7.1f} µs per record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=["flask", "fastapi"], choices=FRAMEWORKS)
    parser.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=list(ENDPOINTS))
    parser.add_argument(
        "--variants", nargs="+", default=VARIANTS, choices=VARIANTS + EXTRA_VARIANTS
    )
    parser.add_argument("--event-ns", type=float, default=150.0, help="virtual clock step")
    parser.add_argument(
        "--sdk",
        default=str(ROOT / "sdk"),
        help="the SDK to measure (its directory; default: this tree's)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time")
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--compare", help="JSON of an earlier run: show the change")
    parser.add_argument("--repeat", action="store_true", help="run every point twice (spread)")
    parser.add_argument("--quick", action="store_true", help="N1, N2 halved (counts stay exact)")
    parser.add_argument(
        "--encoding", action="store_true", help="wall-clock encoding + gzip per record, then stop"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="SDK settings of the sdk variants (VALUE as JSON, e.g. track_sql=false)",
    )
    parser.add_argument(
        "--measure",
        nargs=4,
        metavar=("FRAMEWORK", "ENDPOINT", "VARIANT", "N"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.measure:
        framework, endpoint, variant, count = args.measure
        measure(framework, endpoint, variant, int(count), args.event_ns)
        return
    if args.encoding:
        encoding_benchmark(Path(args.sdk))
        return
    if args.set:
        settings = {}
        for item in args.set:
            name, _, value = item.partition("=")
            settings[name] = json.loads(value)
        os.environ[SETTINGS_ENV] = json.dumps(settings)
    if args.quick:
        COUNTS.update({endpoint: (n1 // 2, n2 // 2) for endpoint, (n1, n2) in COUNTS.items()})
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    toggles = toggles_library()
    if toggles is None:
        print("no C compiler: counting whole processes (slower)", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="sdk-instructions-"))
    jobs = []
    for framework in args.frameworks:
        for endpoint in args.endpoints:
            for variant in args.variants:
                for count in COUNTS[endpoint]:
                    for repeat in range(2 if args.repeat else 1):
                        jobs.append((framework, endpoint, variant, count, repeat))

    def run(job: tuple[str, str, str, int, int]) -> dict[str, int]:
        framework, endpoint, variant, count, _ = job
        counts = run_point(
            framework, endpoint, variant, count, args.event_ns, toggles, workdir, Path(args.sdk)
        )
        print(f"{framework}/{endpoint}/{variant} N={count}: {counts}", file=sys.stderr, flush=True)
        return counts

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        counted = dict(zip(jobs, pool.map(run, jobs), strict=True))
    results: dict[str, dict[str, float]] = {}
    spreads: list[str] = []
    for framework in args.frameworks:
        for endpoint in args.endpoints:
            n1, n2 = COUNTS[endpoint]
            for variant in args.variants:
                key = f"{framework}/{endpoint}/{variant}"
                results[key] = per_request(
                    counted[(framework, endpoint, variant, n1, 0)],
                    counted[(framework, endpoint, variant, n2, 0)],
                    n1,
                    n2,
                )
                if args.repeat:
                    again = per_request(
                        counted[(framework, endpoint, variant, n1, 1)],
                        counted[(framework, endpoint, variant, n2, 1)],
                        n1,
                        n2,
                    )
                    change = 100 * (again["total"] / results[key]["total"] - 1)
                    raw = [counted[(framework, endpoint, variant, n2, r)] for r in (0, 1)]
                    spreads.append(
                        f"{key}: {results[key]['total']:.0f} vs {again['total']:.0f} "
                        f"instructions/request ({change:+.2f} %); I(N2) {raw[0]} vs {raw[1]}"
                    )
    shutil.rmtree(workdir, ignore_errors=True)
    compare = json.loads(Path(args.compare).read_text()) if args.compare else None
    report(results, compare)
    if spreads:
        print()
        print("Repeatability (each point measured twice)")
        for line in spreads:
            print(line)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
