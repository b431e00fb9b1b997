"""SDK overhead per request, as ratios measured in one run (DESIGN §10).

For Flask and FastAPI, on a trivial endpoint and a realistic one (5 SQLite
queries through SQLAlchemy and a JSON body), it compares:

- ``bare``: the app alone;
- ``sdk-0``: the SDK at 0 % sampling (every request still measured);
- ``sdk-100``: the SDK profiling every request (tree, metrics and send included);
- ``pyinstrument``: each request wrapped in a bare pyinstrument ``Profiler``;
- ``sentry``: sentry-sdk with traces and profiles at 100 %, sending to a local sink.

Requests are driven straight through the WSGI/ASGI callable (no network, no
test client) so the middleware is what varies. bare, sdk-0, sdk-100 and
pyinstrument run side by side in one process with interleaved repeats, so
ratios are immune to load drift; sentry instruments globally, so it runs in
its own process after a bare measurement there. Ratios are computed within a
process and the median over rounds reported. Everything sends to a local
HTTP sink.

``--http`` adds a second, separate measurement: the latency a client sees
over loopback. Each of bare, sdk-0, sdk-100 and pyinstrument is served by a
real server in its own process (Flask under werkzeug's single-threaded
``make_server`` with HTTP/1.1 keep-alive, FastAPI under uvicorn) and a client
process drives them in turn over a reused ``http.client.HTTPConnection``,
repeats interleaved as above. The in-process figures are not affected.

Run: ``python benchmarks/sdk_overhead.py [--rounds 3] [--quick] [--http | --http-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VARIANTS = ["bare", "sdk-0", "sdk-100", "pyinstrument", "sentry"]
FRAMEWORKS = ["flask", "fastapi"]
ENDPOINTS = {"trivial": "/ping", "realistic": "/items"}


# -- the sink every variant sends to ---------------------------------------------------


def start_sink() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _ok(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"code":0,"msg":"","data":{"enabled":true,"sampling_rate":1.0}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET = _ok  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that hung up early (sentry's transport at exit) is not news

    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- the apps --------------------------------------------------------------------------


def _engine(db: str) -> Any:
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


def _query_items(engine: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    items = []
    with engine.connect() as conn:
        for offset in range(0, 50, 10):
            rows = conn.execute(
                text("SELECT id, name, price FROM items LIMIT 10 OFFSET :o"), {"o": offset}
            )
            items.extend({"id": r[0], "name": r[1], "price": r[2]} for r in rows)
    return items


def sdk_settings(variant: str, sink_url: str) -> dict[str, Any]:
    return {
        "project_key": "bench",
        "api_endpoint": sink_url,
        "sampling_rate": 1.0 if variant == "sdk-100" else 0.0,
        "remote_config": False,
        "app_version": "bench",
        "git_commit": "bench",
    }


def flask_app(variant: str, sink_url: str, db: str) -> Any:
    from flask import Flask, jsonify

    app = Flask(__name__)
    engine = _engine(db)

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.get("/items")
    def items() -> Any:
        return jsonify(items=_query_items(engine))

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
    return app


def fastapi_app(variant: str, sink_url: str, db: str) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()
    engine = _engine(db)

    @app.get("/ping", response_class=PlainTextResponse)
    async def ping() -> str:
        return "ok"

    @app.get("/items")
    def items() -> dict[str, Any]:
        return {"items": _query_items(engine)}

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
    return app


# -- drivers: call the app directly --------------------------------------------------


def drive_wsgi(app: Any, path: str, count: int) -> float:
    base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "bench",
        "REMOTE_ADDR": "127.0.0.1",
    }
    import io

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    start = time.perf_counter()
    for _ in range(count):
        environ = dict(base, PATH_INFO=path)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close:
            close()
    return (time.perf_counter() - start) / count


def drive_asgi(app: Any, path: str, count: int) -> float:
    async def one() -> None:
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
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, send)

    async def many() -> float:
        start = time.perf_counter()
        for _ in range(count):
            await one()
        return (time.perf_counter() - start) / count

    return asyncio.run(many())


# -- measuring, in a worker process ---------------------------------------------------

LOCAL_VARIANTS = ["bare", "sdk-0", "sdk-100", "pyinstrument"]


def _sizes(quick: bool) -> tuple[dict[str, int], int]:
    counts = {"trivial": 300 if quick else 1000, "realistic": 60 if quick else 200}
    return counts, 3 if quick else 7


def worker(framework: str, group: str, sink_url: str, quick: bool) -> dict[str, dict[str, float]]:
    """Median seconds per request for each variant of ``group``, measured in this process.

    ``local``: bare, sdk-0, sdk-100 and pyinstrument side by side, their
    repeats interleaved so load changes hit them alike. ``sentry``: bare, then
    the same app after ``sentry_sdk.init`` (which instruments globally).
    """
    import performance_monitor

    build = flask_app if framework == "flask" else fastapi_app
    drive = drive_wsgi if framework == "flask" else drive_asgi
    counts, repeats = _sizes(quick)
    directory = tempfile.mkdtemp(prefix="bench-")
    variants = LOCAL_VARIANTS if group == "local" else ["bare"]
    apps = {v: build(v, sink_url, os.path.join(directory, f"{v}.sqlite3")) for v in variants}
    times: dict[str, dict[str, list[float]]] = {v: {e: [] for e in ENDPOINTS} for v in variants}

    def measure(variant: str, app: Any) -> None:
        for endpoint, path in ENDPOINTS.items():
            times[variant][endpoint].append(drive(app, path, counts[endpoint]))
        if variant == "sdk-100":
            performance_monitor.flush(30)  # drain the sender between blocks, untimed

    for app in apps.values():
        for endpoint, path in ENDPOINTS.items():
            drive(app, path, max(20, counts[endpoint] // 5))  # warm up
    for repeat in range(repeats):
        order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for variant in order:
            measure(variant, apps[variant])
    if group == "sentry":
        import sentry_sdk

        port = sink_url.rsplit(":", 1)[1]
        sentry_sdk.init(
            dsn=f"http://public@127.0.0.1:{port}/1",
            traces_sample_rate=1.0,
            profiles_sample_rate=1.0,
            send_default_pii=False,
        )
        app = build("sentry", sink_url, os.path.join(directory, "sentry.sqlite3"))
        times["sentry"] = {e: [] for e in ENDPOINTS}
        for endpoint, path in ENDPOINTS.items():
            drive(app, path, max(20, counts[endpoint] // 5))
        for _ in range(repeats):
            measure("sentry", app)
    return {
        v: {e: statistics.median(t) for e, t in by_endpoint.items()}
        for v, by_endpoint in times.items()
    }


# -- over HTTP: real servers on loopback, a keep-alive client ------------------------


def _pin(slot: int) -> None:
    """Client on one CPU, every server on another, so all variants get the same placement."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[slot]})


def serve(framework: str, variant: str, sink_url: str) -> None:
    """Serve one variant on a free loopback port; print the port, then serve until killed.

    ``/flush`` (added after the middleware, used only between timed blocks)
    waits for the SDK's sender, as the in-process driver does.
    """
    import socket

    import performance_monitor

    _pin(1)

    db = os.path.join(tempfile.mkdtemp(prefix="bench-"), f"{variant}.sqlite3")

    def flush() -> str:
        performance_monitor.flush(30)
        return "flushed"

    if framework == "flask":
        from werkzeug.serving import WSGIRequestHandler, make_server

        class KeepAliveHandler(WSGIRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive; one client at a time
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_request(self, *args: Any) -> None:
                pass

        app = flask_app(variant, sink_url, db)
        app.add_url_rule("/flush", "flush", flush)
        server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=KeepAliveHandler)
        print(server.server_port, flush=True)
        server.serve_forever()
    else:
        import uvicorn

        app = fastapi_app(variant, sink_url, db)
        app.add_api_route("/flush", flush)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1], flush=True)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_keep_alive=600, lifespan="off"
        )
        uvicorn.Server(config).run(sockets=[sock])


def drive_http(port: int, path: str, count: int) -> float:
    """Seconds per request for ``count`` GETs on one keep-alive connection."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)  # connect and one request, untimed
        conn.getresponse().read()
        start = time.perf_counter()
        for _ in range(count):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}")
        return (time.perf_counter() - start) / count
    finally:
        conn.close()


def _flush(port: int) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/flush")
        conn.getresponse().read()
    finally:
        conn.close()


def http_worker(framework: str, sink_url: str, quick: bool) -> dict[str, dict[str, float]]:
    """Median seconds per request seen by a client, each variant in its own server process."""
    # Loopback latency drifts with whatever else the machine does, so more and
    # shorter interleaved blocks than in-process.
    counts, repeats = _sizes(quick)
    counts = {endpoint: count // 5 for endpoint, count in counts.items()}
    repeats *= 4
    _pin(0)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "sdk"), str(root)])}
    servers: dict[str, subprocess.Popen[str]] = {}
    ports: dict[str, int] = {}
    try:
        for variant in LOCAL_VARIANTS:
            command = [sys.executable, __file__, "--serve", framework, variant, sink_url]
            servers[variant] = subprocess.Popen(
                command, stdout=subprocess.PIPE, text=True, env=env, cwd=root
            )
        for variant, process in servers.items():
            assert process.stdout is not None
            ports[variant] = int(process.stdout.readline())
        times: dict[str, dict[str, list[float]]] = {
            v: {e: [] for e in ENDPOINTS} for v in LOCAL_VARIANTS
        }
        for variant in LOCAL_VARIANTS:
            for endpoint, path in ENDPOINTS.items():
                drive_http(ports[variant], path, 5 * counts[endpoint])  # warm up
            _flush(ports[variant])
        for repeat in range(repeats):
            shift = repeat % len(LOCAL_VARIANTS)
            for variant in LOCAL_VARIANTS[shift:] + LOCAL_VARIANTS[:shift]:
                for endpoint, path in ENDPOINTS.items():
                    times[variant][endpoint].append(
                        drive_http(ports[variant], path, counts[endpoint])
                    )
                    _flush(ports[variant])  # untimed, as in-process
        return {
            v: {e: statistics.median(t) for e, t in by_endpoint.items()}
            for v, by_endpoint in times.items()
        }
    finally:
        for process in servers.values():
            process.terminate()
        for process in servers.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument(
        "--http", action="store_true", help="also measure over HTTP on loopback (real servers)"
    )
    parser.add_argument("--http-only", action="store_true", help="only the over-HTTP measurement")
    parser.add_argument(
        "--worker", nargs=3, metavar=("FRAMEWORK", "GROUP", "SINK"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--serve", nargs=3, metavar=("FRAMEWORK", "VARIANT", "SINK"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    if args.worker:
        framework, group, sink_url = args.worker
        if group == "http":
            result = http_worker(framework, sink_url, quick=args.quick)
        else:
            result = worker(framework, group, sink_url, quick=args.quick)
        print(json.dumps(result))
        return
    sink = start_sink()
    sink_url = f"http://127.0.0.1:{sink.server_port}"
    groups = [] if args.http_only else ["local", "sentry"]
    groups += ["http"] if args.http or args.http_only else []
    runs: list[tuple[str, str, dict[str, dict[str, float]]]] = []
    root = Path(__file__).resolve().parents[1]
    for round_no in range(args.rounds):
        for framework in FRAMEWORKS:
            for group in groups:
                command = [sys.executable, __file__, "--worker", framework, group, sink_url]
                command += ["--quick"] if args.quick else []
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "sdk"), str(root)])}
                output = subprocess.run(
                    command, capture_output=True, text=True, env=env, check=True, cwd=root
                )
                runs.append((framework, group, json.loads(output.stdout.strip().splitlines()[-1])))
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    in_process = [run for run in runs if run[1] != "http"]
    if in_process:
        print("In-process (WSGI/ASGI callable called directly)")
        report(in_process)
    over_http = [run for run in runs if run[1] == "http"]
    if over_http:
        if in_process:
            print()
        print("Over HTTP on loopback (server process per variant, keep-alive client)")
        report(over_http, LOCAL_VARIANTS, RATIOS[:-1])


RATIOS = [
    ("sdk-0/bare", "sdk-0", "bare"),
    ("sdk-100/pyi", "sdk-100", "pyinstrument"),
    ("sdk-100/bare", "sdk-100", "bare"),
    ("pyi/bare", "pyinstrument", "bare"),
    ("sentry/bare", "sentry", "bare"),
]


def report(
    runs: list[tuple[str, str, dict[str, dict[str, float]]]],
    variants: list[str] = VARIANTS,
    ratios_shown: list[tuple[str, str, str]] = RATIOS,
) -> None:
    """Ratios are taken within one run (one round) and their median over rounds is shown."""
    ratios: dict[tuple[str, str, str], list[float]] = {}
    absolute: dict[tuple[str, str, str], list[float]] = {}
    for framework, group, result in runs:
        for endpoint in ENDPOINTS:
            for name, top, bottom in ratios_shown:
                if top in result and bottom in result:
                    value = result[top][endpoint] / result[bottom][endpoint]
                    ratios.setdefault((framework, endpoint, name), []).append(value)
            for variant, by_endpoint in result.items():
                if group != "sentry" or variant == "sentry":
                    absolute.setdefault((framework, endpoint, variant), []).append(
                        by_endpoint[endpoint]
                    )
    print("Median time per request (µs)")
    print(f"{'framework':9} {'endpoint':10} " + " ".join(f"{v:>13}" for v in variants))
    for framework in FRAMEWORKS:
        for endpoint in ENDPOINTS:
            cells = " ".join(
                f"{statistics.median(absolute[(framework, endpoint, v)]) * 1e6:13.1f}"
                for v in variants
            )
            print(f"{framework:9} {endpoint:10} {cells}")
    print()
    print("Ratios, same run, median over rounds")
    print("(budgets, DESIGN §10: sdk-0/bare <= 1.03 on trivial; sdk-100/pyi <= 1.2)")
    print(f"{'framework':9} {'endpoint':10} " + " ".join(f"{n:>13}" for n, _, _ in ratios_shown))
    for framework in FRAMEWORKS:
        for endpoint in ENDPOINTS:
            cells = " ".join(
                f"{statistics.median(ratios[(framework, endpoint, n)]):13.3f}"
                for n, _, _ in ratios_shown
            )
            print(f"{framework:9} {endpoint:10} {cells}")


if __name__ == "__main__":
    main()
