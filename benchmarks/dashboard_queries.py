"""Dashboard page data loads at N and 10 × N stored records over the same range.

The overview page (every project's summary and trend buckets) and the
endpoints page (the endpoint table and the trend of the range) read the
pre-aggregated ``endpoint_metrics`` minute documents, whose number depends on
the time range and the number of endpoints, not on the traffic. So storing
10 × the records (and 10 × the requests in the metric stream) over the same
6 hours should leave their load time nearly unchanged: budget ≤ 1.3×.

Each case has its own database holding one project with steady traffic on 5
routes over the last 6 hours; ``--sampled`` of the requests (default 2 %) are
stored as records (with a small call tree). Times are medians of ``--runs`` runs of the pages' own
``load()`` methods (the data work, without rendering).

    .venv/bin/python benchmarks/dashboard_queries.py [--records 2000] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.ingest import validate_records  # noqa: E402
from panel_apps.endpoints import EndpointsPage  # noqa: E402
from panel_apps.overview import OverviewPage  # noqa: E402
from panel_apps.state import AppState  # noqa: E402
from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from pystrument_lab.loaders import Lab  # noqa: E402
from pystrument_lab.store import Store  # noqa: E402
from tests.utils.factories import make_metric, make_record  # noqa: E402

ROUTES = ["/api/users/{id}", "/api/orders", "/api/search", "/api/report", "/api/export"]
HOURS = 6
FLUSH_SECONDS = 30  # one metric point per route per half minute, as a busy SDK process sends


def interleaved_medians(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each action, run in turns so that load from other processes hits all alike."""
    for action in actions.values():
        action()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def seed(store: Store, key: str, records: int, *, now: datetime, sampled: float) -> int:
    """``records / sampled`` requests spread evenly over the last HOURS hours; returns the request count."""
    requests = round(records / sampled)
    every = round(1 / sampled)
    rng = random.Random(records)
    start = now - timedelta(hours=HOURS) + timedelta(minutes=1)
    span = HOURS * 3600 - 120
    flushes: dict[tuple[int, str], list[float]] = {}
    chosen = []
    for index in range(requests):
        offset = span * index / requests
        route = ROUTES[index % len(ROUTES)]
        duration = rng.lognormvariate(-3, 0.7)
        flushes.setdefault((int(offset) // FLUSH_SECONDS, route), []).append(duration)
        if index % every == 0:
            chosen.append(
                make_record(route=route, path=route, duration=duration, trace_id=uuid.uuid4().hex,
                            timestamp=start + timedelta(seconds=offset))
            )  # fmt: skip
    for offset in range(0, len(chosen), 500):
        valid, _ = validate_records(chosen[offset : offset + 500])
        store.insert_records(key, valid)
    points = [
        make_metric(durations, route=route, start=start + timedelta(seconds=slot * FLUSH_SECONDS))
        for (slot, route), durations in flushes.items()
    ]
    for point in points:
        point["interval_start"] = datetime.fromisoformat(point["interval_start"])
    for offset in range(0, len(points), 200):
        store.add_metrics(key, points[offset : offset + 200])
    return requests


def pages(store: Store) -> tuple[OverviewPage, EndpointsPage]:
    state = AppState(Lab(store), project="shop", time_range=f"{HOURS}h", page="overview")
    return OverviewPage(state), EndpointsPage(state)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=2000, help="stored records in the small case (N)"
    )
    parser.add_argument(
        "--sampled", type=float, default=0.02, help="share of requests stored as records"
    )
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    actions: dict[str, Callable[[], object]] = {}
    with tempfile.TemporaryDirectory() as home:
        server = EmbeddedServer(Path(home), port=free_port())
        url = server.ensure_running()
        stores = []
        try:
            for label, count in (("N", args.records), ("10N", args.records * 10)):
                store = Store(url, database=f"bench_dashboard_{label.lower()}", timeout_ms=10_000)
                store.ensure_indexes()
                stores.append(store)
                key = store.create_project("shop")["project_key"]
                started = time.perf_counter()
                requests = seed(store, key, count, now=now, sampled=args.sampled)
                print(
                    f"{label:>3}: {store.records.count_documents({}):>6} records, {requests:>7} requests "
                    f"(seeded in {time.perf_counter() - started:.0f} s)"
                )
                overview, endpoints = pages(store)
                actions[f"overview {label}"] = overview.load
                actions[f"endpoints {label}"] = endpoints.load
            medians = interleaved_medians(actions, args.runs)
        finally:
            for store in stores:
                store.client.drop_database(store.db.name)
                store.close()
            server.stop()
    for page in ("overview", "endpoints"):
        small, large = medians[f"{page} N"], medians[f"{page} 10N"]
        print(
            f"{page:<9} N {small * 1000:6.1f} ms   10N {large * 1000:6.1f} ms   "
            f"ratio {large / small:.2f} (budget <= 1.30)"
        )


if __name__ == "__main__":
    main()
