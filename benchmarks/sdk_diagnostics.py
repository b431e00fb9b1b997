"""What each sampled-path diagnostic costs on its own: exceptions, SQL statements, allocation sites.

For each addition, a Flask app is driven straight through its WSGI callable
(as in ``sdk_overhead.py``) at 100 % sampling with the addition on and with
it switched off (its function replaced by a no-op), repeats interleaved in
one process; the ratio on/off is the median over rounds. The endpoints:

- exceptions: a view that raises 8 frames deep (Flask answers 500);
- statements: 5 and 50 SQLite queries through SQLAlchemy (``instrument_engine``);
- allocation sites: ``track_memory`` on, views holding 2,000 (~0.5 MB, below the
  1 MB threshold) and 10,000 (~2.5 MB) small dicts.
- pacing (the profiler lengthening its interval when samples cost too much):
  ``track_memory`` on, a view recursing 150 frames deep 5 times, and one
  building 20,000 small dicts 40 frames down.

It also drives every endpoint at 0 % sampling and counts calls into the
three additions: the unsampled path must make none.

Run: ``python benchmarks/sdk_diagnostics.py [--rounds 5] [--requests 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead_apps import items_engine  # noqa: E402
from sdk_overhead import drive_wsgi, start_sink  # noqa: E402


def build_app(sink_url: str, db: str, sampling_rate: float, track_memory: bool) -> Any:
    from flask import Flask, jsonify
    from performance_monitor.flask.middleware import PerformanceMiddleware
    from performance_monitor.sqlalchemy import instrument_engine
    from sqlalchemy import text

    app = Flask(__name__)
    engine = instrument_engine(items_engine(db))
    held: list[Any] = []

    def deep(n: int) -> int:
        if n == 0:
            raise LookupError("no such item: token=abc")
        return deep(n - 1) + 1

    def queries(n: int) -> list[Any]:
        with engine.connect() as conn:
            return [
                conn.execute(text("SELECT name FROM items WHERE id = :i"), {"i": i % 200}).scalar()
                for i in range(n)
            ]

    @app.get("/raise")
    def failing() -> Any:
        return str(deep(8))

    @app.get("/sql5")
    def sql5() -> Any:
        return jsonify(queries(5))

    @app.get("/sql50")
    def sql50() -> Any:
        return jsonify(queries(50))

    @app.get("/alloc")
    def alloc() -> Any:
        rows = [{"id": i, "name": f"item{i}"} for i in range(2000)]  # ~0.5 MB: no sites
        held[:] = [rows]
        return jsonify(len(rows))

    @app.get("/alloc-large")
    def alloc_large() -> Any:
        rows = [{"id": i, "name": f"item{i}"} for i in range(10_000)]  # ~2.5 MB
        held[:] = [rows]
        return jsonify(len(rows))

    def down(depth: int, then: Any) -> Any:
        return then() if depth == 0 else down(depth - 1, then)

    def build(n: int) -> int:
        out = []
        for i in range(n):
            out.append({"id": i, "name": str(i)})
        return len(out)

    @app.get("/deep")
    def recursive() -> Any:
        return jsonify(sum(down(150, lambda: 1) for _ in range(5)))

    @app.get("/loop")
    def loop() -> Any:
        return jsonify(down(40, lambda: build(20_000)))

    app.logger.disabled = True
    settings = {
        "project_key": "bench",
        "api_endpoint": sink_url,
        "sampling_rate": sampling_rate,
        "remote_config": False,
        "track_memory": track_memory,
        "session_min_duration": 10.0,  # the record, not the session's serialisation
    }
    PerformanceMiddleware(app, settings)
    return app


class Switch:
    """Replace one module attribute by a stand-in (off) or restore it (on)."""

    def __init__(self, module: Any, name: str, stand_in: Any) -> None:
        self.module, self.name, self.stand_in = module, name, stand_in
        self.original = getattr(module, name)

    def set(self, on: bool) -> None:
        setattr(self.module, self.name, self.original if on else self.stand_in)


def switches() -> dict[str, list[Switch]]:
    from performance_monitor import sqlalchemy
    from performance_monitor.core import memory, monitor, profiler, request

    return {
        "exceptions": [Switch(monitor, "exception_info", lambda exc, sensitive=(): None)],
        "statements": [
            Switch(
                request,
                "add_statement",
                lambda statements, statement, duration, task=None: [0, 0.0, 0.0],
            ),
            Switch(sqlalchemy, "timed_rows", lambda cursor, state, execution: cursor),
        ],
        "allocations": [
            Switch(memory, "allocation_sites", lambda raw, before, limit=20: []),
            Switch(memory, "start_snapshot", lambda fresh: None),
            Switch(memory, "traces", lambda: []),
        ],
        "pacing": [Switch(profiler._BoundedProfiler, "_pace", lambda self, cost: None)],
    }


CASES = [
    ("exceptions", "/raise", False),
    ("statements", "/sql5", False),
    ("statements", "/sql50", False),
    ("allocations", "/alloc", True),
    ("allocations", "/alloc-large", True),
    ("pacing", "/deep", True),
    ("pacing", "/loop", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    from performance_monitor.core import monitor as monitor_module

    sink = start_sink()
    sink_url = f"http://127.0.0.1:{sink.server_port}"
    db = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    groups = switches()
    apps = {memory: build_app(sink_url, db, 1.0, memory) for memory in (False, True)}
    print("| addition | endpoint | off (ms/request) | on (ms/request) | ratio on/off |")
    print("|---|---|---|---|---|")
    for name, path, memory in CASES:
        app = apps[memory]
        drive_wsgi(app, path, 20)  # warm-up
        ratios, offs, ons = [], [], []
        for _ in range(args.rounds):
            timings: dict[bool, list[float]] = {}
            for on in (False, True, False, True):
                for switch in groups[name]:
                    switch.set(on)
                timings.setdefault(on, []).append(drive_wsgi(app, path, args.requests))
            off, on_ = statistics.median(timings[False]), statistics.median(timings[True])
            offs.append(off)
            ons.append(on_)
            ratios.append(on_ / off)
        for switch in groups[name]:
            switch.set(True)
        print(
            f"| {name} | {path} | {statistics.median(offs) * 1e3:.3f} | "
            f"{statistics.median(ons) * 1e3:.3f} | {statistics.median(ratios):.3f} |"
        )
        for monitor in monitor_module.all_monitors():
            monitor.flush(10)

    calls = {name: 0 for name in groups}

    def counting(name: str, switch: Switch) -> Any:
        def stand_in(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return switch.original(*args, **kwargs)

        return stand_in

    for name, group in groups.items():
        for switch in group:
            setattr(switch.module, switch.name, counting(name, switch))
    unsampled = build_app(sink_url, db, 0.0, True)
    for _, path, _ in CASES:
        drive_wsgi(unsampled, path, 50)
    print()
    print(f"calls at 0 % sampling ({50 * len(CASES)} requests): {calls}")
    for monitor in monitor_module.all_monitors():
        monitor.close(5)
    sink.shutdown()


if __name__ == "__main__":
    main()
