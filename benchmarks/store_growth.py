"""Every request path at growing store sizes: is each one flat from 10k to 1M records?

One embedded store (nx-27017) holds one database per size. Each database gets
a project ``shop`` whose sampled records (``--sizes``, default 10k and 100k)
are spread over the last 7 days on 8 routes, two app versions (1.0, then
2.0), 1 % errors, and the metric stream of all its requests (10 × the
records) folded into minute / 10-minute / hourly documents; plus a second
project ``other`` with as many records again and metric points on many
routes, so that every scan also pays for another project's data, as it does
in a shared store.

Seeding goes through a real collector (uvicorn, HTTP, gzip JSON as the SDK
sends it) up to ``--http-limit`` records per database; beyond that the same
validated documents are written with ``Store.insert_records`` /
``Store.add_metrics`` (the functions the collector's routes call), because
HTTP seeding of a million records takes hours on a small machine.

Then every path is timed on every database in turns (interleaved, so load
from other processes hits all sizes alike) and the medians are printed, with
the ratio of each size to the smallest: the API's records listing (every
filter, a deep page by ``page`` and by cursor), a record's detail, trends for
1 h / 24 h / 7 d, the endpoint table, an endpoint's merged tree, the version
comparison, the analysis input (record and endpoint), the dashboard pages'
data, the report notebooks' queries, ingest (records/s over HTTP) and metric
ingest (a batch of new routes over HTTP).

    .venv/bin/python benchmarks/store_growth.py [--sizes 10000 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.growth_seed import (  # noqa: E402
    HTTP_BATCH,
    ROUTES,
    WEEK,
    Seeded,
    plan_chunks,
    post_records,
    records_between,
    seed_metrics,
    seed_records,
    top_up,
    write_direct,
)
from pystrument_lab.analysis import runner  # noqa: E402
from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from pystrument_lab.loaders import Lab  # noqa: E402
from pystrument_lab.store import Store  # noqa: E402
from tests.utils.factories import make_metric  # noqa: E402
from tests.utils.services import CollectorProcess  # noqa: E402

METRIC_SLOT = 300  # default: one metric point per route per 5 minutes (merged SDK flushes)


class Case:
    """One database of one size, its collector and the handles the timed paths use."""

    def __init__(self, url: str, home: Path, size: int, *, reuse: bool) -> None:
        self.size = size
        self.home = home
        self.database = f"growth_{size}"
        self.store = Store(url, database=self.database, timeout_ms=60_000)
        self.seeded = Seeded.load(home, size) if reuse else None
        if self.seeded is None:
            self.store.client.drop_database(self.database)
        self.store.ensure_indexes()
        self.collector = CollectorProcess(
            url,
            self.database,
            home,
            PYSTRUMENT_RATE_LIMIT_PER_MINUTE="100000000",
            PYSTRUMENT_STORE_TIMEOUT_MS="60000",
        )
        self.collector.start(timeout=60)
        self.http = httpx.Client(timeout=120, headers=self.collector.admin_headers)
        self.lab = Lab(self.store)
        self.cursor: str | None = None

    @property
    def key(self) -> str:
        assert self.seeded is not None
        return self.seeded.key

    @property
    def old_trace(self) -> str:
        assert self.seeded is not None
        return self.seeded.old_trace

    def seed(
        self,
        now: datetime,
        http_limit: int,
        slot_seconds: int,
        other_size: int,
        *,
        leave_direct: bool = False,
    ) -> list[Any]:
        """Seed a fresh database, or bring a reused one up to ``now``; with
        ``leave_direct``, return the chunks left for :func:`seed_direct`."""
        started = time.perf_counter()
        if self.seeded is not None:
            sent = top_up(
                self.store, self.http, self.collector.url, self.home, self.seeded, now, slot_seconds
            )
            self.size = self.seeded.done
            print(f"size {self.size:>8}: reused, {sent} records sent since it was seeded")
            return []
        self.seeded = Seeded(
            size=self.size,
            other_size=other_size if other_size >= 0 else self.size,
            key=self.collector.create_project("shop")["project_key"],
            other=self.collector.create_project("other")["project_key"],
            old_trace="",
            week_end=now.isoformat(),
            switch=(now - WEEK / 2).isoformat(),
        )
        self.seeded.save(self.home)
        if not leave_direct:  # seed_direct sends them once the records are in
            seed_metrics(self.store, self.seeded, slot_seconds)

        def progress(seeded: Seeded) -> None:
            print(
                f"size {self.size:>8}: {seeded.done:>8} records in "
                f"{time.perf_counter() - started:6.0f} s",
                flush=True,
            )

        left = seed_records(
            self.store,
            self.http,
            self.collector.url,
            self.home,
            self.seeded,
            http_limit,
            progress,
            leave_direct=leave_direct,
        )
        if left:
            return left
        print(
            f"size {self.size:>8}: seeded in {time.perf_counter() - started:6.0f} s "
            f"({self.store.records.estimated_document_count()} records, "
            f"{self.store.endpoint_metrics.estimated_document_count()} metric documents)",
            flush=True,
        )
        return []

    def api(self, path: str, **params: Any) -> dict[str, Any]:
        answer = self.http.get(self.collector.url + path, params=params)
        assert answer.status_code == 200, (path, params, answer.text[:300])
        return answer.json()["data"]

    def listing(self, **params: Any) -> Callable[[], object]:
        return lambda: self.api("/api/v1/performance/records", project_key=self.key, **params)

    def deep_cursor(self) -> Callable[[], object]:
        """Page 200 of 20 by following the cursor: the time of its last page's fetch."""

        def last_page() -> object:
            extra = {"cursor": self.cursor} if self.cursor else {}
            return self.api("/api/v1/performance/records", project_key=self.key, size=20, **extra)

        return last_page

    def prepare_cursor(self) -> None:
        """Follow the cursor 199 pages deep (or as deep as the records go)."""
        cursor = None
        for _ in range(199):
            params: dict[str, Any] = {"project_key": self.key, "size": 20}
            if cursor:
                params["cursor"] = cursor
            following = self.api("/api/v1/performance/records", **params).get("next_cursor")
            if following is None:
                break
            cursor = following
        self.cursor = cursor

    def ingest(self) -> Callable[[], object]:
        def post() -> object:
            now = datetime.now(timezone.utc)
            batch = records_between(
                HTTP_BATCH, now - timedelta(seconds=1), now, random.randrange(1 << 30), now
            )
            post_records(self.http, self.collector.url, self.key, batch)
            return None

        return post

    def metric_ingest(self) -> Callable[[], object]:
        def post() -> object:
            now = datetime.now(timezone.utc)
            fresh = uuid.uuid4().hex[:8]
            points = [
                make_metric([0.02, 0.03], route=f"/fresh/{fresh}/{index}", start=now)
                for index in range(50)
            ]
            answer = self.http.post(
                self.collector.url + "/api/v1/performance/metrics",
                json={"metrics": points},
                headers={"X-Project-Key": self.key},
            )
            assert answer.status_code == 200, answer.text[:300]
            return None

        return post

    def paths(self) -> dict[str, Callable[[], object]]:
        from panel_apps.endpoints import EndpointsPage
        from panel_apps.overview import OverviewPage
        from panel_apps.records import RecordsPage
        from panel_apps.state import AppState
        from panel_apps.trace import TracePage

        state = AppState(self.lab, project="shop", time_range="24h", page="overview")
        route = ROUTES[3]
        trace_state = AppState(self.lab, project="shop", trace=self.old_trace, page="trace")
        return {
            "list newest": self.listing(),
            "list route": self.listing(route=route),
            "list status 500": self.listing(status_code=500),
            "list method POST": self.listing(method="POST"),
            "list version 1.0": self.listing(app_version="1.0"),
            "list min_duration": self.listing(min_duration=0.2),
            "list time_range 1h": self.listing(time_range="1h"),
            "list slowest": self.listing(sort="-total_duration"),
            "list page 50": self.listing(page=50),
            "list cursor p200": self.deep_cursor(),
            "record detail": lambda: self.api(
                f"/api/v1/performance/records/{self.key}/{self.old_trace}"
            ),
            "trends 1h": lambda: self.api(
                f"/api/v1/performance/trends/{self.key}", time_range="1h"
            ),
            "trends 24h": lambda: self.api(
                f"/api/v1/performance/trends/{self.key}", time_range="24h"
            ),
            "trends 7d": lambda: self.api(
                f"/api/v1/performance/trends/{self.key}", time_range="7d"
            ),
            "endpoints 24h": lambda: self.lab.endpoints("shop", time_range="24h"),
            "merged tree": lambda: self.lab.merged_tree("shop", route, limit=200),
            "compare versions": lambda: self.lab.compare_versions("shop", "1.0", "2.0"),
            "version diff": lambda: self.lab.version_diff("shop", route, "1.0", "2.0", limit=200),
            "analysis record": lambda: runner.record_profile(self.store, self.old_trace, self.key),
            "analysis endpoint": lambda: runner.endpoint_profile(self.store, self.key, route),
            "page overview": OverviewPage(state).load,
            "page endpoints": EndpointsPage(state).load,
            "page records": RecordsPage(state).load,
            "page trace": TracePage(trace_state).load,
            "report versions": lambda: self.lab.versions("shop"),
            "report trends 7d": lambda: self.lab.trends("shop", time_range="7d"),
            "report records": lambda: self.lab.records("shop", time_range="24h", limit=1000),
            "ingest 100 records": self.ingest(),
            "metrics 50 new routes": self.metric_ingest(),
        }

    def close(self, *, keep: bool) -> None:
        self.http.close()
        self.collector.stop()
        if not keep:
            self.store.client.drop_database(self.database)
        self.store.close()


def seed_direct(
    home: Path,
    size: int,
    now: datetime,
    http_limit: int,
    slot_seconds: int,
    other_size: int,
    until: float | None = None,
) -> None:
    """Seed the database of ``size`` in ``home``: through the server and the collector
    (projects, records up to ``http_limit``), then the rest written straight
    into its SQLite file with the server stopped (:func:`write_direct`), then
    the server started again on it: the metric stream through ``Store.add_metrics``
    as for every size, and a check of what it serves."""
    server = EmbeddedServer(home, port=free_port())
    started = time.perf_counter()
    seeded = Seeded.load(home, size)
    if seeded is None:
        case = Case(server.ensure_running(), home, size, reuse=False)
        try:
            left = case.seed(now, http_limit, slot_seconds, other_size, leave_direct=True)
        finally:
            case.close(keep=True)
            server.stop()
        assert case.seeded is not None
        seeded = case.seeded
    else:  # resume: the chunks of shop not written yet (other's come first)
        left = [
            item
            for item in plan_chunks(seeded, http_limit)
            if item[0] == seeded.key and item[1] >= seeded.done
        ]
    database = f"growth_{size}"
    print(
        f"size {size:>8}: {seeded.done} records in, {sum(span[0] for _, _, span in left)} "
        "to write directly",
        flush=True,
    )
    direct = time.perf_counter()

    def progress(seeded: Seeded) -> None:
        rate = (seeded.done - first) / (time.perf_counter() - direct)
        print(
            f"size {size:>8}: {seeded.done:>8} records in "
            f"{time.perf_counter() - started:6.0f} s ({rate:,.0f} records/s written directly)",
            flush=True,
        )

    first = seeded.done
    complete = write_direct(server.data_dir / f"{database}.db", home, seeded, left, progress, until)
    took = time.perf_counter() - direct
    print(
        f"size {size:>8}: {seeded.done - first} records written directly in {took:.0f} s "
        f"({(seeded.done - first) / took:,.0f} records/s)",
        flush=True,
    )
    if not complete:
        finish_direct(home, size, slot_seconds)
        return
    store = Store(server.ensure_running(), database=database, timeout_ms=60_000)
    try:
        seed_metrics(store, seeded, slot_seconds)
        seeded.complete = True
        seeded.save(home)
        print(
            f"size {size:>8}: metric stream in {time.perf_counter() - direct - took:.0f} s; "
            f"the server serves {store.records.estimated_document_count()} records, "
            f"{store.call_trees.estimated_document_count()} trees, "
            f"{len(store.records.index_information())} record indexes",
            flush=True,
        )
    finally:
        store.close()
        server.stop()


def finish_direct(home: Path, size: int, slot_seconds: int) -> int:
    """Finish a direct seeding of ``size`` stopped part of the way (killed between
    chunks, or past ``--direct-minutes``): the database becomes the size it holds
    (file and description renamed, the server stopped), then gets the metric
    stream of that size through the server. Returns the size."""
    seeded = Seeded.load(home, size)
    assert seeded is not None and not seeded.complete, f"no unfinished seeding of {size}"
    server = EmbeddedServer(home, port=free_port())
    server.stop()
    held = seeded.done
    for suffix in ("", "-wal", "-shm"):
        source = server.data_dir / f"growth_{size}.db{suffix}"
        if source.exists():
            source.rename(server.data_dir / f"growth_{held}.db{suffix}")
    Seeded.path(home, size).unlink()
    seeded.size = held
    seeded.save(home)
    started = time.perf_counter()
    store = Store(server.ensure_running(), database=f"growth_{held}", timeout_ms=60_000)
    try:
        seed_metrics(store, seeded, slot_seconds)
        seeded.complete = True
        seeded.save(home)
        print(
            f"size {held:>8}: metric stream in {time.perf_counter() - started:.0f} s; the server "
            f"serves {store.records.estimated_document_count()} records, "
            f"{store.endpoint_metrics.estimated_document_count()} metric documents",
            flush=True,
        )
    finally:
        store.close()
        server.stop()
    return held


def interleaved(
    cases: list[Case], runs: int, only: list[str] | None = None
) -> dict[str, list[float]]:
    """Median seconds per path and case, every path run on every case in turn."""
    actions = [case.paths() for case in cases]
    names = [name for name in actions[0] if not only or any(part in name for part in only)]
    samples: dict[str, list[list[float]]] = {name: [[] for _ in cases] for name in names}
    for name in names:
        for action in actions:
            action[name]()  # warm-up
    for _ in range(runs):
        for name in names:
            for index, action in enumerate(actions):
                started = time.perf_counter()
                action[name]()
                samples[name][index].append(time.perf_counter() - started)
    return {name: [statistics.median(s) for s in per_case] for name, per_case in samples.items()}


def cleanup_under_ingest(case: Case, idle_batches: int) -> str:
    """Ingest latency (batches of 100 over HTTP) idle, then while the oldest day is deleted."""
    assert case.seeded is not None
    post = case.ingest()

    def timed() -> float:
        started = time.perf_counter()
        post()
        return time.perf_counter() - started

    start = datetime.fromisoformat(case.seeded.week_end) - WEEK
    # first what a daily job would long have removed: minute and 10-minute metric
    # documents past their retention, so the timed run removes one day of everything
    case.store.delete_older_than(start)
    idle = [timed() for _ in range(idle_batches)]
    cutoff = start + timedelta(days=1)
    removed: dict[str, Any] = {}

    def clean() -> None:
        removed.update(case.store.delete_older_than(cutoff))

    worker = threading.Thread(target=clean)
    started = time.perf_counter()
    worker.start()
    busy = []
    while worker.is_alive():
        busy.append(timed())
    took = time.perf_counter() - started

    def p99(values: list[float]) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[98] * 1000

    return (
        f"cleanup of the oldest day at {case.size:,} records: {removed} in {took:.0f} s; "
        f"ingest of 100 records idle p50 {statistics.median(idle) * 1000:.0f} ms / "
        f"p99 {p99(idle):.0f} ms ({len(idle)} batches), during the cleanup p50 "
        f"{statistics.median(busy) * 1000:.0f} ms / p99 {p99(busy):.0f} ms ({len(busy)} batches)"
    )


def table(cases: list[Case], medians: dict[str, list[float]]) -> str:
    sizes = [case.size for case in cases]
    head = "| path | " + " | ".join(f"{size:,} ms" for size in sizes)
    head += " | " + " | ".join(f"{size:,} / {sizes[0]:,}" for size in sizes[1:]) + " |"
    rule = "|---|" + "---:|" * (2 * len(sizes) - 1)
    lines = [head, rule]
    for name, values in medians.items():
        if name.startswith("ingest"):
            rates = [HTTP_BATCH / value for value in values]
            cells = [f"{rate:,.0f} rec/s" for rate in rates]
            ratios = [f"{rate / rates[0]:.2f}× rate" for rate in rates[1:]]
        else:
            cells = [f"{value * 1000:,.1f}" for value in values]
            ratios = [f"{value / values[0]:.2f}" for value in values[1:]]
        lines.append(f"| {name} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--http-limit",
        type=int,
        default=200_000,
        help="records per project seeded over HTTP; the rest through Store.insert_records",
    )
    parser.add_argument(
        "--metric-slot", type=int, default=METRIC_SLOT, help="seconds between metric points"
    )
    parser.add_argument(
        "--other-records",
        type=int,
        default=-1,
        help="records of the second project (default: as many as the measured one)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        nargs="+",
        default=None,
        help="keep stores here (one embedded server each); a later run reuses a size "
        "seeded in any of them, new sizes go to the first",
    )
    parser.add_argument("--paths", nargs="+", help="time only the paths naming one of these")
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="then delete the largest store's oldest day while timing ingest (changes it)",
    )
    parser.add_argument("--seed-only", action="store_true", help="seed, then stop (with --home)")
    parser.add_argument(
        "--direct-from",
        type=int,
        default=None,
        help="sizes from this one up are seeded past --http-limit by writing the same "
        "documents straight into the store's file with the server stopped (write_direct)",
    )
    parser.add_argument(
        "--finish-direct",
        action="store_true",
        help="finish the direct seeding of the first --sizes in the first --home "
        "stopped part of the way (finish_direct), then stop",
    )
    parser.add_argument(
        "--direct-minutes",
        type=float,
        default=None,
        help="stop writing directly after this long (the store holds what was written)",
    )
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    if args.finish_direct:
        os.environ.setdefault("PYSTRUMENT_HOME", str(args.home[0]))
        finish_direct(args.home[0], args.sizes[0], args.metric_slot)
        return
    with tempfile.TemporaryDirectory() as scratch:
        homes: list[Path] = args.home or [Path(scratch)]
        servers: dict[Path, str] = {}
        cases: list[Case] = []
        try:
            for size in args.sizes:
                home = next((h for h in homes if Seeded.path(h, size).exists()), homes[0])
                direct = args.direct_from is not None and size >= args.direct_from
                known = Seeded.load(home, size)
                if direct and (known is None or not known.complete):
                    assert home not in servers, "a directly seeded size needs a home of its own"
                    home.mkdir(parents=True, exist_ok=True)
                    os.environ.setdefault("PYSTRUMENT_HOME", str(home))
                    minutes = args.direct_minutes
                    seed_direct(
                        home,
                        size,
                        now,
                        args.http_limit,
                        args.metric_slot,
                        args.other_records,
                        None if minutes is None else time.time() + minutes * 60,
                    )
                    if args.seed_only:
                        continue  # (a size stopped part of the way holds another size now)
                if home not in servers:
                    home.mkdir(parents=True, exist_ok=True)
                    os.environ.setdefault("PYSTRUMENT_HOME", str(home))
                    servers[home] = EmbeddedServer(home, port=free_port()).ensure_running()
                case = Case(servers[home], home, size, reuse=args.home is not None)
                cases.append(case)
                case.seed(now, args.http_limit, args.metric_slot, args.other_records)
            if not args.seed_only:
                if not args.paths or any(part in "list cursor p200" for part in args.paths):
                    for case in cases:
                        case.prepare_cursor()
                print(f"load average before: {os.getloadavg()}", flush=True)
                medians = interleaved(cases, args.runs, args.paths)
                print(f"load average after: {os.getloadavg()}")
                print(table(cases, medians), flush=True)
                if args.cleanup:
                    print(cleanup_under_ingest(cases[-1], 30))
        finally:
            for case in cases:
                case.close(keep=args.home is not None)
            for home in servers:
                EmbeddedServer(home).stop()


if __name__ == "__main__":
    main()
