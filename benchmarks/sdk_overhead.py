"""SDK overhead per request, as ratios measured in one run (DESIGN §10).

For Flask, FastAPI and Django, on a trivial endpoint and a realistic one (5
SQLite queries through SQLAlchemy, or the Django ORM, and a JSON body; the
apps are in ``overhead_apps.py``), it compares:

- ``bare``: the app alone;
- ``sdk-0``: the SDK at 0 % sampling (every request still measured);
- ``sdk-100``: the SDK profiling every request (tree, metrics and send included);
- ``pyinstrument``: each request wrapped in a bare pyinstrument ``Profiler``;
- ``sentry``: sentry-sdk with traces and profiles at 100 %, sending to a local sink;
- ``otel``: OpenTelemetry's official instrumentation, traces only, every
  request traced into an in-memory exporter (a ``BatchSpanProcessor``).

Requests are driven straight through the WSGI/ASGI callable (no network, no
test client) so the middleware is what varies. bare, sdk-0, sdk-100 and
pyinstrument run side by side in one process with interleaved repeats, so
ratios are immune to load drift; sentry and OpenTelemetry instrument
globally, so each runs in a process of its own, after a bare measurement
there. Ratios are computed within a process; each is reported as its median
over rounds with the lowest and highest round. Between timed blocks each
variant's background sending is drained, untimed. Everything sends to a
local HTTP sink.

``--http`` adds a second, separate measurement: the latency a client sees
over loopback. Each variant is served by a real server in its own process
(Flask and Django under werkzeug's single-threaded ``make_server`` with
HTTP/1.1 keep-alive, FastAPI under uvicorn), so sentry and OpenTelemetry
are isolated there too, and a client process drives them in turn over a
reused ``http.client.HTTPConnection``, repeats interleaved as above. The
in-process figures are not affected.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.overhead_apps import (  # noqa: E402
    ENDPOINTS,
    OTEL_MIN_SPANS,
    add_route,
    build_app,
    drain,
    start_sentry,
)

VARIANTS = ["bare", "sdk-0", "sdk-100", "pyinstrument", "sentry", "otel"]
FRAMEWORKS = ["flask", "fastapi", "django"]
# Measured side by side in one process; each of the others in a process of its own.
LOCAL_VARIANTS = ["bare", "sdk-0", "sdk-100", "pyinstrument"]
ISOLATED_VARIANTS = ["sentry", "otel"]


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


def _sizes(quick: bool) -> tuple[dict[str, int], int]:
    counts = {"trivial": 300 if quick else 1000, "realistic": 60 if quick else 200}
    return counts, 3 if quick else 7


def _check_traced(endpoint: str, requests: int, spans: int) -> None:
    """The otel variant really traces: at least the expected spans for each request."""
    if spans < requests * OTEL_MIN_SPANS[endpoint]:
        raise RuntimeError(
            f"otel: {spans} spans for {requests} {endpoint} requests,"
            f" expected at least {OTEL_MIN_SPANS[endpoint]} per request"
        )


def worker(framework: str, group: str, sink_url: str, quick: bool) -> dict[str, dict[str, float]]:
    """Median seconds per request for each variant of ``group``, measured in this process.

    ``local``: bare, sdk-0, sdk-100 and pyinstrument side by side, their
    repeats interleaved so load changes hit them alike. ``sentry`` and
    ``otel``: bare, then the same app under sentry-sdk or OpenTelemetry
    (which instrument globally, so nothing else is measured after them).
    """
    drive = drive_asgi if framework == "fastapi" else drive_wsgi
    counts, repeats = _sizes(quick)
    directory = tempfile.mkdtemp(prefix="bench-")
    variants = LOCAL_VARIANTS if group == "local" else ["bare"]
    apps = {
        v: build_app(framework, v, sink_url, os.path.join(directory, f"{v}.sqlite3"))
        for v in variants
    }
    times: dict[str, dict[str, list[float]]] = {v: {e: [] for e in ENDPOINTS} for v in variants}

    def warm_up(variant: str, app: Any) -> None:
        for endpoint, path in ENDPOINTS.items():
            requests = max(20, counts[endpoint] // 5)
            drive(app, path, requests)
            spans = drain(variant)
            if variant == "otel":
                _check_traced(endpoint, requests, spans)

    def measure(variant: str, app: Any) -> None:
        for endpoint, path in ENDPOINTS.items():
            times[variant][endpoint].append(drive(app, path, counts[endpoint]))
            drain(variant)  # between blocks, untimed

    for variant, app in apps.items():
        warm_up(variant, app)
    for repeat in range(repeats):
        order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for variant in order:
            measure(variant, apps[variant])
    if group in ISOLATED_VARIANTS:
        if group == "sentry":
            start_sentry(sink_url)
        app = build_app(framework, group, sink_url, os.path.join(directory, f"{group}.sqlite3"))
        times[group] = {e: [] for e in ENDPOINTS}
        warm_up(group, app)
        for _ in range(repeats):
            measure(group, app)
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
    drains the variant's background sending, as the in-process driver does.
    """
    import socket

    _pin(1)
    db = os.path.join(tempfile.mkdtemp(prefix="bench-"), f"{variant}.sqlite3")
    if variant == "sentry":
        start_sentry(sink_url)
    app = build_app(framework, variant, sink_url, db)

    def flush() -> str:
        return str(drain(variant))  # spans exported, for the otel variant

    add_route(framework, app, "/flush", flush)
    if framework == "fastapi":
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1], flush=True)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_keep_alive=600, lifespan="off"
        )
        uvicorn.Server(config).run(sockets=[sock])
    else:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class KeepAliveHandler(WSGIRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive; one client at a time
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_request(self, *args: Any) -> None:
                pass

        server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=KeepAliveHandler)
        print(server.server_port, flush=True)
        server.serve_forever()


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


def _flush(port: int) -> int:
    """Drain the server's background sending; the spans it exported (otel), else 0."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/flush")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"/flush: HTTP {response.status}")
        return int(body)
    finally:
        conn.close()


def _subprocess_env() -> dict[str, str]:
    """Workers and servers import the SDK and the benchmarks of this tree."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "sdk"), str(ROOT)])}


def http_worker(framework: str, sink_url: str, quick: bool) -> dict[str, dict[str, float]]:
    """Median seconds per request seen by a client, each variant in its own server process."""
    # Loopback latency drifts with whatever else the machine does, so more and
    # shorter interleaved blocks than in-process.
    counts, repeats = _sizes(quick)
    counts = {endpoint: count // 5 for endpoint, count in counts.items()}
    repeats *= 4
    _pin(0)
    servers: dict[str, subprocess.Popen[str]] = {}
    ports: dict[str, int] = {}
    try:
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--serve", framework, variant, sink_url]
            servers[variant] = subprocess.Popen(
                command, stdout=subprocess.PIPE, text=True, env=_subprocess_env(), cwd=ROOT
            )
        for variant, process in servers.items():
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.strip():
                raise RuntimeError(f"the {framework} {variant} server did not start")
            ports[variant] = int(line)
        times: dict[str, dict[str, list[float]]] = {v: {e: [] for e in ENDPOINTS} for v in VARIANTS}
        for variant in VARIANTS:
            for endpoint, path in ENDPOINTS.items():
                drive_http(ports[variant], path, 5 * counts[endpoint])  # warm up
                spans = _flush(ports[variant])
                if variant == "otel":
                    _check_traced(endpoint, 5 * counts[endpoint], spans)
        for repeat in range(repeats):
            shift = repeat % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
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


Run = tuple[str, str, dict[str, dict[str, float]]]  # framework, group, seconds per request


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
    groups = [] if args.http_only else ["local", *ISOLATED_VARIANTS]
    groups += ["http"] if args.http or args.http_only else []
    runs: list[Run] = []
    for round_no in range(args.rounds):
        for framework in FRAMEWORKS:
            for group in groups:
                command = [sys.executable, __file__, "--worker", framework, group, sink_url]
                command += ["--quick"] if args.quick else []
                output = subprocess.run(
                    command, capture_output=True, text=True, env=_subprocess_env(), cwd=ROOT
                )
                if output.returncode != 0:
                    sys.stderr.write(output.stderr)
                    raise SystemExit(f"the {framework} {group} worker failed")
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
        report(over_http)


# The unsampled SDK beside what a user would otherwise install, then the profiled SDK.
RATIO_TABLES = [
    (
        "Unsampled beside the alternatives (budget, DESIGN §10: sdk-0/bare <= 1.03 on trivial)",
        [
            ("sdk-0/bare", "sdk-0", "bare"),
            ("otel/bare", "otel", "bare"),
            ("sentry/bare", "sentry", "bare"),
        ],
    ),
    (
        "Profiled (budget, DESIGN §10: sdk-100/pyi <= 1.2)",
        [
            ("sdk-100/pyi", "sdk-100", "pyinstrument"),
            ("sdk-100/bare", "sdk-100", "bare"),
            ("pyi/bare", "pyinstrument", "bare"),
        ],
    ),
]
RATIOS = [ratio for _, ratios in RATIO_TABLES for ratio in ratios]


def report(runs: list[Run]) -> None:
    """Ratios are taken within one run (one process); shown as median (lowest–highest) over rounds.

    A variant's absolute time comes from the run it is measured in (bare from
    the side-by-side run, or from the server's over HTTP).
    """
    ratios: dict[tuple[str, str, str], list[float]] = {}
    absolute: dict[tuple[str, str, str], list[float]] = {}
    for framework, group, result in runs:
        for endpoint in ENDPOINTS:
            for name, top, bottom in RATIOS:
                if top in result and bottom in result:
                    value = result[top][endpoint] / result[bottom][endpoint]
                    ratios.setdefault((framework, endpoint, name), []).append(value)
            for variant, by_endpoint in result.items():
                if group in ("local", "http") or variant == group:
                    absolute.setdefault((framework, endpoint, variant), []).append(
                        by_endpoint[endpoint]
                    )
    rounds = max(len(values) for values in ratios.values())
    print(f"Median time per request (µs), median over {rounds} round(s)")
    print(f"{'framework':9} {'endpoint':10} " + " ".join(f"{v:>13}" for v in VARIANTS))
    for framework in FRAMEWORKS:
        for endpoint in ENDPOINTS:
            values = [absolute.get((framework, endpoint, v)) for v in VARIANTS]
            cells = " ".join(
                f"{statistics.median(v) * 1e6:13.1f}" if v else f"{'-':>13}" for v in values
            )
            print(f"{framework:9} {endpoint:10} {cells}")
    for title, shown in RATIO_TABLES:
        print()
        print(title)
        print(f"ratio within one run: median (lowest–highest) over {rounds} round(s)")
        print(f"{'framework':9} {'endpoint':10} " + " ".join(f"{n:>22}" for n, _, _ in shown))
        for framework in FRAMEWORKS:
            for endpoint in ENDPOINTS:
                cells = []
                for name, _, _ in shown:
                    values = ratios.get((framework, endpoint, name))
                    cells.append(
                        f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"
                        if values
                        else "-"
                    )
                print(f"{framework:9} {endpoint:10} " + " ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
