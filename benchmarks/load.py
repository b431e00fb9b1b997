"""Sustained ingest load: several concurrent senders against a real collector for a bounded time.

Starts an embedded store and a collector (uvicorn subprocess, loopback only),
creates one project per sender, then each sender process posts gzip batches
to ``/api/v1/performance/collect`` as fast as the collector answers, for
``--duration`` seconds. Meanwhile the collector's RSS is sampled every second
from ``/proc``. At the end every accepted record is checked against the
store (exactly that many documents, none twice).

Prints throughput (records/s and requests/s), ingest latency percentiles
(p50/p95/p99/max) and the collector's RSS over time.

    .venv/bin/python benchmarks/load.py                       # 30 s, 3 senders
    .venv/bin/python benchmarks/load.py --duration 180 --senders 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from pystrument_lab.store import Store  # noqa: E402
from tests.utils.factories import make_record, simple_tree  # noqa: E402
from tests.utils.services import CollectorProcess  # noqa: E402

COLLECT = "/api/v1/performance/collect"


def tree(size: int, duration: float) -> list[dict[str, Any]]:
    """A plausible pruned tree of ``size`` nodes whose times add up."""
    nodes = simple_tree(duration)[:1]
    nodes[0]["self_time"] = duration / size
    share = duration * (1 - 1 / size) / max(size - 1, 1)
    for index in range(1, size):
        nodes.append(
            {
                "call_id": index,
                "parent_call_id": 0,
                "function_name": f"step_{index}",
                "file_path": "app/views.py",
                "line_number": index,
                "duration": share,
                "self_time": share,
                "depth": 1,
                "call_order": index - 1,
                "is_application": index % 2 == 0,
            }
        )
    return nodes


def sender(url: str, key: str, batch: int, nodes: int, stop_at: float, out: Any) -> None:
    """One SDK-like sender: gzip batches, back to back, until ``stop_at`` (a time.time())."""
    template = make_record(nodes=tree(nodes, 0.12), route="/api/orders/{id}")
    latencies: list[float] = []
    accepted = errors = 0
    headers = {
        "X-Project-Key": key,
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    with httpx.Client(base_url=url, timeout=30.0) as client:
        while time.time() < stop_at:
            records = [
                {
                    **template,
                    "trace_id": uuid.uuid4().hex,
                    "request_info": {**template["request_info"], "path": f"/api/orders/{i}"},
                }
                for i in range(batch)
            ]
            body = gzip.compress(json.dumps({"records": records}).encode(), compresslevel=1)
            start = time.perf_counter()
            try:
                response = client.post(COLLECT, content=body, headers=headers)
                answer = response.json()
            except (httpx.HTTPError, ValueError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            if answer.get("code") == 0:
                accepted += answer["data"]["accepted"]
            else:
                errors += 1
    out.put({"key": key, "latencies": latencies, "accepted": accepted, "errors": errors})


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run_load(
    *,
    duration: float = 30.0,
    senders: int = 3,
    batch: int = 50,
    nodes: int = 40,
    mongo_url: str | None = None,
    home: Path | None = None,
) -> dict[str, Any]:
    """Run the load; returns the figures (also used by tests/reliability/test_sustained_load.py)."""
    with tempfile.TemporaryDirectory(prefix="pystrument-load-") as scratch:
        base = home or Path(scratch)
        server = None
        if mongo_url is None:
            server = EmbeddedServer(base / "store", port=free_port())
            mongo_url = server.ensure_running()
        database = "load_" + uuid.uuid4().hex[:8]
        collector = CollectorProcess(
            mongo_url, database, base, PYSTRUMENT_RATE_LIMIT_PER_MINUTE="100000000"
        )
        collector.start()
        store = Store(mongo_url, database=database, timeout_ms=30_000)
        try:
            keys = [collector.create_project(f"load-{i}")["project_key"] for i in range(senders)]
            assert collector.process is not None
            pid = collector.process.pid
            samples: list[tuple[float, float]] = []
            done = threading.Event()
            began = time.monotonic()

            def sample() -> None:
                while not done.is_set():
                    samples.append((time.monotonic() - began, rss_mb(pid)))
                    done.wait(1.0)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            context = mp.get_context("spawn")
            results = context.Queue()
            stop_at = time.time() + duration
            workers = [
                context.Process(
                    target=sender, args=(collector.url, key, batch, nodes, stop_at, results)
                )
                for key in keys
            ]
            for worker in workers:
                worker.start()
            reports = [results.get(timeout=duration + 120) for _ in workers]
            for worker in workers:
                worker.join(timeout=30)
            elapsed = time.monotonic() - began
            done.set()
            sampler.join()
            alive = collector.process.poll() is None
            # One scan in Python: the embedded server counts by scanning, once per query.
            stored = dict.fromkeys(keys, 0)
            trace_ids: set[str] = set()
            for doc in store.records.find({}, {"project_key": 1, "trace_id": 1, "_id": 0}):
                stored[doc["project_key"]] += 1
                trace_ids.add(doc["project_key"] + "/" + doc["trace_id"])
            distinct = len(trace_ids)
        finally:
            store.client.drop_database(database)
            store.close()
            collector.stop()
            if server is not None:
                server.stop()
    latencies = [value for report in reports for value in report["latencies"]]
    accepted = sum(report["accepted"] for report in reports)
    # RSS growth is judged after a warm-up (connection pools, first allocations).
    warm = [value for t, value in samples if t >= min(5.0, duration / 4)] or [v for _, v in samples]
    third = max(1, len(warm) // 3)
    return {
        "duration_s": round(elapsed, 1),
        "senders": senders,
        "batch": batch,
        "nodes_per_record": nodes,
        "requests": len(latencies),
        "errors": sum(report["errors"] for report in reports),
        "records_accepted": accepted,
        "records_stored": sum(stored.values()),
        "stored_matches_accepted": all(stored[r["key"]] == r["accepted"] for r in reports)
        and distinct == sum(stored.values()),
        "records_per_s": round(accepted / elapsed),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            name: round(1000 * value, 1)
            for name, value in (
                ("p50", percentile(latencies, 50)),
                ("p95", percentile(latencies, 95)),
                ("p99", percentile(latencies, 99)),
                ("max", max(latencies)),
            )
        }
        if latencies
        else {},
        "rss_mb": {
            "idle": round(samples[0][1], 1),
            "warm_first_third_median": round(statistics.median(warm[:third]), 1),
            "warm_last_third_median": round(statistics.median(warm[-third:]), 1),
            "max": round(max(value for _, value in samples), 1),
            "end": round(samples[-1][1], 1),
        },
        "rss_samples": [(round(t, 1), round(m, 1)) for t, m in samples],
        "collector_alive": alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--senders", type=int, default=3, help="concurrent sender processes")
    parser.add_argument("--batch", type=int, default=50, help="records per request")
    parser.add_argument("--nodes", type=int, default=40, help="call-tree nodes per record")
    args = parser.parse_args()
    figures = run_load(
        duration=args.duration, senders=args.senders, batch=args.batch, nodes=args.nodes
    )
    samples = figures.pop("rss_samples")
    print(json.dumps(figures, indent=2))
    step = max(1, len(samples) // 12)
    print("collector RSS over time (s, MB):", samples[::step] + samples[-1:])
    print(f"cpu count: {os.cpu_count()}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
