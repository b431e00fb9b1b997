"""Capture fidelity on real servers: per point of issue 13's Build list, the figure measured.

Apps written for it (``fidelity_apps.py``: a FastAPI app, a Flask app, a Django
project; helper functions whose names say nothing about what they do) are served by real
servers on loopback, each in its own process: uvicorn (asyncio and uvloop
loops), hypercorn, gunicorn with uvicorn workers, gunicorn's sync worker (Flask,
Django WSGI) and uvicorn/hypercorn through Django's ASGI handler. The SDK
samples every request (unless a point says otherwise) and sends to a real
HTTP sink in this process (``tests/utils/sink.py``), which decodes the gzip
JSON batches; every figure is read from what arrived there:

1. async fidelity: ``async def`` endpoints awaiting ``asyncio.sleep`` and one
   of 8 helper coroutines (chosen by the request's parameter, each named
   differently, each running CPU work in a plain function), one request at a
   time and 8 at once: trees, the request's helper (and its callee) in them,
   ``[await]`` nodes, coverage = root duration / ``total_duration``, and trees
   holding another request's helper;
2. application frames: trees whose ``application_root`` is the endpoint;
3. exceptions: records of raising endpoints with the right type, message
   (redacted) and raising frame, 4xx records without an error, per-type
   counts in the endpoint aggregates against the requests sent;
4. SQL statements: an N+1 loop of K queries (SQLAlchemy ORM, Django ORM, the
   async Django ORM): the stored statement, its count against K, its call site;
5. allocation sites with ``track_memory``: the allocating function first, bytes;
6. ``@monitor_view`` / ``@monitor_performance`` at ``SAMPLING_RATE`` 50 and
   ``adaptive_capture_count`` 4.

Run: ``nice -n 10 .venv/bin/python benchmarks/capture_fidelity.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

import httpx  # noqa: E402

from pystrument_lab.embedded import free_port  # noqa: E402
from tests.utils.sink import Sink  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fidelity_apps import CONCURRENCY, ENDPOINTS, KINDS, MESSAGES, SERVERS, write_apps  # noqa: E402


class Served:
    """A server of :data:`SERVERS` running in its own process, sending to its own sink."""

    def __init__(self, url: str, sink: Sink) -> None:
        self.url = url
        self.sink = sink
        self.sent: dict[str, int] = {}  # route prefix -> requests sent

    def get(self, client: httpx.Client, path: str, **params: Any) -> httpx.Response:
        prefix = path.split("/")[1]
        self.sent[prefix] = self.sent.get(prefix, 0) + 1
        return client.get(self.url + path, params=params or None)

    def records(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.sink.records() if _prefix(r) == prefix]

    def counted(self, prefix: str) -> int:
        return sum(m["count"] for m in self.metrics(prefix))

    def metrics(self, prefix: str) -> list[dict[str, Any]]:
        return [
            m for m in self.sink.metric_points() if m["route"].lstrip("/").split("/")[0] == prefix
        ]

    def settle(self, expected_records: dict[str, int], timeout: float = 60.0) -> None:
        """Wait until the sink holds the records expected and every request's count."""

        def done() -> bool:
            if any(len(self.records(p)) < n for p, n in expected_records.items()):
                return False
            return all(self.counted(p) >= n for p, n in self.sent.items())

        if not self.sink.wait_for(done, timeout):
            print(f"  (not all arrived within {timeout:.0f} s: {expected_records} {self.sent})")


def _prefix(record: dict[str, Any]) -> str:
    return str(record["request_info"]["path"].split("/")[1])


@contextmanager
def serve(name: str, apps: Path, sdk: dict[str, Any]) -> Iterator[Served]:
    framework, command = SERVERS[name]
    port = free_port()
    sink = Sink()
    settings = {
        "project_key": "fidelity",
        "api_endpoint": sink.url,
        "remote_config": False,
        "sampling_rate": 1.0,
        "batch_timeout": 0.2,
        "metrics_interval": 0.3,
        **sdk,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSTRUMENT_")}
    if framework == "django":
        env["GROVE_MONITOR"] = json.dumps({k.upper(): v for k, v in settings.items()})
    else:
        env.update({f"PYSTRUMENT_{k.upper()}": str(v) for k, v in settings.items()})
    env.update(
        SVC_DB=str(apps / f"{framework}.sqlite3"),
        PYTHONPATH=f"{apps}{os.pathsep}{ROOT}",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    argv = [str(BIN / command[0]), *(part.format(port=port) for part in command[1:])]
    log = apps / f"{name.replace('/', '-')}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=apps, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Served(url, sink)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sink.close()


# -- reading a stored tree -----------------------------------------------------------


def _named(nodes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [n for n in nodes if n["function_name"] == name]


def _children(nodes: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes if n["parent_call_id"] == parent["call_id"]]


def opens_at(record: dict[str, Any]) -> str | None:
    """The function the tree's application root names."""
    nodes, root = record.get("function_calls") or [], record.get("application_root")
    return nodes[root]["function_name"] if root is not None and root < len(nodes) else None


def coverage(record: dict[str, Any]) -> float:
    nodes = record.get("function_calls") or []
    total = record["performance_metrics"]["total_duration"]
    return nodes[0]["duration"] / total if nodes and total else 0.0


def _ratio(hits: int, total: int) -> str:
    return f"{hits}/{total}"


def _median_min(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} | {min(values):.3f}" if values else "– | –"


class Report:
    """Tables printed at the end, one per point, and the trees kept for point 2."""

    def __init__(self) -> None:
        self.rows: dict[str, list[str]] = {}
        self.opened: dict[str, tuple[Counter[str], Counter[str]]] = {}
        self.notes: list[str] = []

    def add(self, point: str, row: str) -> None:
        self.rows.setdefault(point, []).append(row)

    def trees(self, name: str, records: list[dict[str, Any]]) -> None:
        """Note, for point 2, where each tree opens: at its endpoint, or where instead."""
        for record in records:
            prefix = _prefix(record)
            if prefix in ENDPOINTS and record.get("function_calls"):
                opened = opens_at(record)
                hits, misses = self.opened.setdefault(name, (Counter(), Counter()))
                hits[f"/{prefix}/"] += 1
                if opened != ENDPOINTS[prefix]:
                    misses[f"/{prefix}/ at {opened}"] += 1


# -- 1. async fidelity ---------------------------------------------------------------


def drive_async(served: Served, rounds: int) -> None:
    clients = [httpx.Client(timeout=30) for _ in range(CONCURRENCY)]
    barrier = threading.Barrier(CONCURRENCY)

    def together(j: int, k: int) -> None:
        barrier.wait()
        response = served.get(clients[j], f"/a/{k}", m="par")
        assert response.json() == {"v": k}, response.text

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for k in range(rounds * CONCURRENCY):
            assert served.get(clients[0], f"/a/{k}", m="seq").json() == {"v": k}
        for r in range(rounds):
            start = r * CONCURRENCY
            list(pool.map(together, range(CONCURRENCY), range(start, start + CONCURRENCY)))
    for client in clients:
        client.close()


#: What a helper coroutine spends sleeping and in knot() (14 ms + 3 ms), less 1 ms a
#: timer may fire early per sleep (uvloop counts in ms): a floor for its node's duration.
HELPER_FLOOR = 0.017 - 0.002
#: The endpoint's own 4 ms sleep on top of its helper's.
ENDPOINT_FLOOR = HELPER_FLOOR + 0.004 - 0.001


def async_rows(name: str, records: list[dict[str, Any]], report: Report) -> None:
    for mode, label in (("seq", "one at a time"), ("par", f"{CONCURRENCY} at once")):
        chosen = [r for r in records if r["request_info"]["query_params"].get("m") == mode]
        helper = callee = awaited = foreign = long_enough = 0
        covered, shares = [], []
        for record in chosen:
            nodes = record.get("function_calls") or []
            k = int(record["request_info"]["path"].rsplit("/", 1)[1])
            own = KINDS[k % len(KINDS)]
            found = [n for n in _named(nodes, own) if n["is_application"]]
            helper += bool(found)
            callee += any(_named(_children(nodes, n), "knot") for n in found)
            awaited += bool(_named(nodes, "[await]"))
            foreign += any(_named(nodes, other) for other in KINDS if other != own)
            covered.append(coverage(record))
            metrics = record["performance_metrics"]
            endpoint = sum(n["duration"] for n in _named(nodes, ENDPOINTS["a"]))
            shares.append(endpoint / metrics["total_duration"])
            # A sample lands where the stack is when the thread runs again: while it
            # waited for a CPU (run_queue_time) the helper's time shifts by that much.
            shifted = metrics.get("run_queue_time") or 0.0
            fits = sum(n["duration"] for n in found) >= HELPER_FLOOR - shifted
            long_enough += fits and endpoint >= ENDPOINT_FLOOR - shifted
            if not found or not fits:
                report.notes.append(_outline(name, record))
        n = len(chosen)
        report.add(
            "1",
            f"| {name} | {label} | {n} | {_ratio(helper, n)} | {_ratio(callee, n)} | "
            f"{_ratio(awaited, n)} | {_median_min(covered)} | {_median_min(shares)} | "
            f"{_ratio(long_enough, n)} | {_ratio(foreign, n) if mode == 'par' else '–'} |",
        )


def _outline(name: str, record: dict[str, Any]) -> str:
    nodes = record.get("function_calls") or []
    total = record["performance_metrics"]["total_duration"]
    lines = [f"{name} {record['request_info']['path']} total {total * 1000:.1f} ms:"]
    lines += [
        f"  {'  ' * n['depth']}{n['function_name']} {n['duration'] * 1000:.1f} ms"
        for n in nodes
        if n["duration"] > 0.0005
    ]
    return "\n".join(lines)


# -- 3. exceptions, 4. statements, 5. allocation sites -------------------------------

#: The K of each N+1 request.
LOOPS = (3, 8, 20)
STATEMENTS = {
    "sqlalchemy": "SELECT leaf.id, leaf.name FROM leaf WHERE leaf.id = ?",
    "django": 'SELECT "grove_leaf"."id", "grove_leaf"."name" FROM "grove_leaf" '
    'WHERE "grove_leaf"."id" = ? LIMIT ?',
}


def drive_diagnostics(served: Served, rounds: int, sql_prefix: str | None) -> None:
    with httpx.Client(timeout=30) as client:
        for n in range(2 * rounds):
            # A server may close the connection after an unhandled exception: one each.
            with httpx.Client(timeout=30) as once:
                assert served.get(once, f"/e/{n}").status_code == 500
        for n in range(rounds):
            assert served.get(client, f"/h/{n}").status_code == 404
        if sql_prefix:
            for _ in range(rounds):
                for k in LOOPS:
                    assert served.get(client, f"/{sql_prefix}/{k}").json() == {"n": k}


def exception_rows(name: str, served: Served, report: Report) -> None:
    failed = served.records("e")
    right = raised_in = 0
    for record in failed:
        n = int(record["request_info"]["path"].rsplit("/", 1)[1])
        kind = "ZeroDivisionError" if n % 2 else "LookupError"
        error = record.get("error") or {}
        right += (
            record["response_info"]["status_code"] == 500
            and error.get("type") == kind
            and error.get("message") == MESSAGES[kind].format(n=n)
        )
        frames = error.get("traceback") or [{}]
        raised_in += frames[-1].get("function") == "_iota" and bool(
            frames[-1].get("is_application")
        )
    not_found = served.records("h")
    clean = sum(
        r["response_info"]["status_code"] == 404 and r.get("error") is None for r in not_found
    )
    counted: dict[str, int] = {}
    for point in served.metrics("e"):
        for kind, count in (point.get("exceptions") or {}).items():
            counted[kind] = counted.get(kind, 0) + count
    sent = served.sent.get("e", 0)
    expected = {"LookupError": (sent + 1) // 2, "ZeroDivisionError": sent // 2}
    four = served.metrics("h")
    four_errors = sum(m["errors"] for m in four) + sum(len(m.get("exceptions") or {}) for m in four)
    report.add(
        "3",
        f"| {name} | {_ratio(right, len(failed))} | {_ratio(raised_in, len(failed))} | "
        f"{_ratio(clean, len(not_found))} | {four_errors} | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(counted.items()))} | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(expected.items()))} |",
    )


def statement_rows(
    name: str, served: Served, prefix: str, orm: str, caller: str, report: Report
) -> None:
    records = served.records(prefix)
    texts: Counter[str] = Counter()
    elsewhere: Counter[str] = Counter()
    counts = sites = 0
    for record in records:
        k = int(record["request_info"]["path"].rsplit("/", 1)[1])
        items = record["performance_metrics"]["database_metrics"]["statements"]["items"]
        loop = [
            s for s in items if s["statement"].startswith("SELECT") and "leaf" in s["statement"]
        ]
        heaviest = max(loop, key=lambda s: s["count"]) if loop else {}
        texts[heaviest.get("statement", "(none)")] += 1
        counts += heaviest.get("count") == k
        site = heaviest.get("call_site") or {}
        if site.get("function") == caller:
            sites += 1
        else:
            elsewhere[f"{site.get('function')} ({Path(site.get('file') or '-').name})"] += 1
    instead = ", ".join(f"{where} {n}" for where, n in elsewhere.items()) or "–"
    for text, seen in texts.items():
        matches = "expected" if text == STATEMENTS[orm.split(" ")[0]] else "UNEXPECTED"
        report.add(
            "4",
            f"| {name} | {orm} | {seen} | `{text}` ({matches}) | "
            f"{_ratio(counts, len(records))} | {_ratio(sites, len(records))} | {instead} |",
        )


#: Blocks of ~1 kB each allocation request holds.
BLOCKS = 3000


def allocation_rows(name: str, served: Served, report: Report) -> None:
    records = served.records("m")
    first = 0
    held = []
    for record in records:
        sites = record["performance_metrics"].get("memory_usage", {}).get("allocations") or []
        first += bool(sites) and sites[0]["function"] == "_omicron"
        held += [s["size"] for s in sites[:1] if s["function"] == "_omicron"]
    report.add(
        "5",
        f"| {name} | {_ratio(first, len(records))} | "
        f"{statistics.median(held) / 1e6 if held else 0:.2f} MB "
        f"(allocated ≥ {BLOCKS * 1001 / 1e6:.2f} MB) |",
    )


# -- 6. decorators at 50 % and adaptive capture --------------------------------------


def drive_half(served: Served, requests: int) -> None:
    with httpx.Client(timeout=30) as client:
        for i in range(requests):
            assert served.get(client, f"/d/{i}").json() == {"n": i}
            assert served.get(client, f"/w/{i}").json() == {"n": i}


def half_rows(name: str, served: Served, report: Report) -> None:
    decorated, plain = served.records("d"), served.records("w")
    with_view = sum(
        bool(_named(r.get("function_calls") or [], "dunlin")) and r["tags"].get("k") == "v"
        for r in decorated
    )
    n = served.sent.get("d", 0)
    report.add(
        "6",
        f"| {name} | 50 | {_ratio(len(decorated), n)} | {_ratio(len(plain), served.sent.get('w', 0))} "
        f"| {_ratio(with_view, len(decorated))} | {served.counted('d')}/{n} |",
    )


ADAPTIVE = 4


def drive_adaptive(served: Served) -> None:
    with httpx.Client(timeout=30) as client:
        assert served.get(client, "/w/7", s=0.6).json() == {"n": 7}  # slow: arms it
        for i in range(2 * ADAPTIVE):
            assert served.get(client, "/w/7", s=0.001 * (i + 1)).json() == {"n": 7}


def adaptive_rows(name: str, served: Served, report: Report) -> None:
    records = served.records("w")
    with_tree = sum(bool(_named(r.get("function_calls") or [], "swift")) for r in records)
    report.add(
        "6b",
        f"| {name} | {ADAPTIVE} | {len(records)} | {with_tree} | {served.counted('w')}/{served.sent['w']} |",
    )


# -- the run -------------------------------------------------------------------------

HEADERS = {
    "1": "1. Async fidelity\n\n| server | requests | trees | own helper | helper → knot "
    "| [await] | root / total median | min | endpoint / total median | min "
    "| helper and endpoint ≥ their sleeps + work | another request's helper |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    "2": "2. Application frames\n\n| server | trees per route | opening at the endpoint "
    "| elsewhere |\n|---|---|---|---|",
    "3": "3. Exceptions\n\n| server | 5xx records: type and message right | raised in `_iota` "
    "| 4xx records without error | 4xx errors in aggregates | aggregate exceptions | sent |\n"
    "|---|---|---|---|---|---|---|",
    "4": "4. SQL statements (N+1 loops, K = 3, 8, 20)\n\n| server | ORM | records "
    "| statement stored | count = K | call site = the loop's function | call site instead |\n"
    "|---|---|---|---|---|---|---|",
    "5": "5. Allocation sites (track_memory)\n\n| server | first site = `_omicron` "
    "| its bytes (median) |\n|---|---|---|",
    "6": "6. Decorators at SAMPLING_RATE 50\n\n| server | rate | decorated sampled | plain sampled "
    "| decorated trees holding the view (+tag) | decorated counted |\n|---|---|---|---|---|---|",
    "6b": f"Adaptive capture (sampling 0, adaptive_capture_count {ADAPTIVE}, one slow request "
    f"then {2 * ADAPTIVE} on its path)\n\n| server | N | records | with the view's tree "
    "| counted |\n|---|---|---|---|---|",
}

ASYNC_SERVERS = [
    "fastapi/uvicorn",
    "fastapi/uvicorn-uvloop",
    "fastapi/hypercorn",
    "fastapi/gunicorn-uvicorn",
    "django-asgi/uvicorn",
    "django-asgi/hypercorn",
]
#: server -> (route prefix of its N+1 endpoint, ORM, the function running the loop)
SQL = {
    "flask/gunicorn": ("s", "sqlalchemy ORM", "_rill"),
    "fastapi/uvicorn": ("s", "sqlalchemy ORM (def endpoint)", "_rill"),
    "django-wsgi/gunicorn": ("s", "django ORM", "_brook"),
    "django-asgi/uvicorn": ("t", "django async ORM", "_abrook"),
}


def run(apps: Path, rounds: int, report: Report, only: Callable[[str], bool]) -> None:
    for name in ASYNC_SERVERS:
        if not only(name):
            continue
        print(f"{name}: async", flush=True)
        with serve(name, apps, {}) as served:
            drive_async(served, rounds)
            expected = {"a": 2 * rounds * CONCURRENCY}
            sql = SQL.get(name)
            if sql:  # the first server of each framework serves the diagnostics too
                drive_diagnostics(served, rounds, sql[0])
                expected.update(e=2 * rounds, h=rounds, **{sql[0]: rounds * len(LOOPS)})
            served.settle(expected)
            async_rows(name, served.records("a"), report)
            report.trees(name, served.sink.records())
            if sql:
                exception_rows(name, served, report)
                statement_rows(name, served, *sql, report)
    for name in ("flask/gunicorn", "django-wsgi/gunicorn"):
        if not only(name):
            continue
        print(f"{name}: diagnostics", flush=True)
        with serve(name, apps, {}) as served:
            sql = SQL[name]
            drive_diagnostics(served, rounds, sql[0])
            served.settle({"e": 2 * rounds, "h": rounds, sql[0]: rounds * len(LOOPS)})
            report.trees(name, served.sink.records())
            exception_rows(name, served, report)
            statement_rows(name, served, *sql, report)
    for name in ("flask/gunicorn", "django-wsgi/gunicorn", "fastapi/uvicorn"):
        if not only(name):
            continue
        print(f"{name}: track_memory", flush=True)
        with (
            serve(name, apps, {"track_memory": True}) as served,
            httpx.Client(timeout=60) as client,
        ):
            for _ in range(rounds):
                assert served.get(client, f"/m/{BLOCKS}").status_code == 200
            served.settle({"m": rounds})
            allocation_rows(name, served, report)
    for name in ("flask/gunicorn", "django-wsgi/gunicorn"):
        if not only(name):
            continue
        print(f"{name}: sampling 50", flush=True)
        with serve(name, apps, {"sampling_rate": 50}) as served:
            drive_half(served, 12 * rounds)
            served.settle({})
            half_rows(name, served, report)
    for name in ("flask/gunicorn", "django-wsgi/gunicorn", "fastapi/uvicorn"):
        if not only(name):
            continue
        print(f"{name}: adaptive capture", flush=True)
        adaptive = {
            "sampling_rate": 0,
            "ai_analysis_threshold": 0.3,
            "adaptive_capture_count": ADAPTIVE,
        }
        with serve(name, apps, adaptive) as served:
            drive_adaptive(served)
            served.settle({"w": ADAPTIVE})
            adaptive_rows(name, served, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="8 async requests each way per round")
    parser.add_argument("--only", default="", help="run only servers whose name contains this")
    parser.add_argument("--trees", action="store_true", help="print the trees that fell short")
    args = parser.parse_args()
    started = time.time()
    load = os.getloadavg()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        apps = Path(tmp)
        write_apps(apps)
        run(apps, args.rounds, report, lambda name: args.only in name)
    for name, (trees, misses) in report.opened.items():
        total = sum(trees.values())
        where = ", ".join(f"{place} ({n})" for place, n in misses.items()) or "–"
        routes = ", ".join(f"{route} {n}" for route, n in sorted(trees.items()))
        report.add(
            "2", f"| {name} | {routes} | {_ratio(total - sum(misses.values()), total)} | {where} |"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(started))
    print(
        f"\n{stamp} UTC, {time.time() - started:.0f} s, load average "
        f"{load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end, --rounds {args.rounds}\n"
    )
    for point, header in HEADERS.items():
        if point in report.rows:
            print(header)
            print("\n".join(report.rows[point]))
            print()
    if report.notes:
        print(f"{len(report.notes)} async trees without their helper or shorter than its work")
        if args.trees:
            print("\n\n".join(report.notes))


if __name__ == "__main__":
    main()
