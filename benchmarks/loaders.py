"""Loader costs against their baselines, in one run on one embedded store.

1. ``lab.records(...)`` (a polars DataFrame with flattened columns) against
   iterating the raw pymongo cursor of the same query: budget ≤ 1.2×.
2. ``lab.trends(time_range="24h")`` with N and with 10 × N requests stored
   over the same day (sampled records and the metric stream both grow):
   budget ≤ 1.3×, because trends read pre-aggregated minute documents whose
   number depends on the range, not on the traffic.

Merging 10,000 trees is measured by ``benchmarks/merge_trees.py``.

    .venv/bin/python benchmarks/loaders.py [--records 1000] [--runs 7]
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
from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from pystrument_lab.loaders import Lab  # noqa: E402
from pystrument_lab.store import Store, record_query  # noqa: E402
from tests.utils.factories import make_metric, make_record  # noqa: E402

ROUTES = ["/api/users/{id}", "/api/orders", "/api/search", "/api/report", "/api/export"]
FLUSH_SECONDS = 60  # one metric point per route and minute, as a lightly loaded SDK process sends


def median_seconds(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def seed(store: Store, key: str, requests: int, *, now: datetime, sampled: float = 0.1) -> None:
    """``requests`` requests over the last day: all in the metric stream, a share as records."""
    rng = random.Random(requests)
    start = now - timedelta(hours=23)
    span = 23 * 3600
    flushes: dict[tuple[int, str], list[float]] = {}
    records = []
    for _ in range(requests):
        offset = rng.uniform(0, span)
        route = rng.choice(ROUTES)
        duration = rng.lognormvariate(-3, 0.7)
        flushes.setdefault((int(offset) // FLUSH_SECONDS, route), []).append(duration)
        if rng.random() < sampled:
            records.append(
                make_record(
                    route=route,
                    path=route,
                    duration=duration,
                    timestamp=start + timedelta(seconds=offset),
                    trace_id=uuid.uuid4().hex,
                )
            )
    for offset in range(0, len(records), 200):
        valid, _ = validate_records(records[offset : offset + 200])
        store.insert_records(key, valid)
    points = [
        make_metric(durations, route=route, start=start + timedelta(seconds=slot * FLUSH_SECONDS))
        for (slot, route), durations in flushes.items()
    ]
    for point in points:
        point["interval_start"] = datetime.fromisoformat(point["interval_start"])
    for offset in range(0, len(points), 50):
        store.add_metrics(key, points[offset : offset + 50])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1000, help="sampled records in the small case"
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    now = datetime.now(timezone.utc)

    with tempfile.TemporaryDirectory() as home:
        server = EmbeddedServer(Path(home), port=free_port())
        store = Store(server.ensure_running(), database="bench_loaders")
        store.ensure_indexes()
        lab = Lab(store)
        try:
            small = store.create_project("small")["project_key"]
            large = store.create_project("large")["project_key"]
            requests = args.records * 10  # 10 % sampled
            started = time.perf_counter()
            seed(store, small, requests, now=now)
            seed(store, large, requests * 10, now=now)
            print(f"seeded {requests * 11} requests in {time.perf_counter() - started:.0f} s")

            stored = store.records.count_documents({"project_key": large})
            ours = median_seconds(lambda: lab.records(large, limit=None), args.runs)
            query = record_query(large)
            raw = median_seconds(
                lambda: [doc for doc in store.records.find(query).sort("timestamp", -1)], args.runs
            )
            print(
                f"records loader: {stored} rows, lab.records {ours * 1000:.0f} ms, raw cursor {raw * 1000:.0f} ms, "
                f"ratio {ours / raw:.2f} (budget <= 1.20)"
            )

            trend_small = median_seconds(lambda: lab.trends(small, time_range="24h"), args.runs)
            trend_large = median_seconds(lambda: lab.trends(large, time_range="24h"), args.runs)
            small_records = store.records.count_documents({"project_key": small})
            print(
                f"trends 24h: {small_records} records / {requests} requests {trend_small * 1000:.0f} ms, "
                f"{stored} records / {requests * 10} requests {trend_large * 1000:.0f} ms, "
                f"ratio {trend_large / trend_small:.2f} (budget <= 1.30)"
            )
        finally:
            store.client.drop_database("bench_loaders")
            server.stop()


if __name__ == "__main__":
    main()
