"""Collector ingest throughput against a raw pymongo insert_many of the same documents.

Starts an embedded store and a real collector (uvicorn subprocess), then for
several rounds, alternating the two:

* raw: ``insert_many`` of the records (lean record + call-tree document, as
  the collector stores them) in batches, straight into the same server;
* collector: the same records POSTed as the SDK sends them (gzip JSON batches
  with the project key header) to ``/api/v1/performance/collect``.

Prints records/s for both (medians) and the ratio collector/raw; the budget
(DESIGN §10) is a ratio of at least 0.60.

    .venv/bin/python benchmarks/ingest.py [--records 2000] [--batch 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.ingest import validate_records  # noqa: E402
from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from pystrument_lab.store import Store, split_record  # noqa: E402
from tests.utils.factories import make_record  # noqa: E402
from tests.utils.services import CollectorProcess  # noqa: E402


def realistic_tree(duration: float, size: int = 40) -> list[dict]:
    nodes = [
        {
            "call_id": 0,
            "parent_call_id": None,
            "function_name": "handler",
            "file_path": "app/views.py",
            "line_number": 10,
            "duration": duration,
            "self_time": duration / size,
            "depth": 0,
            "call_order": 0,
            "is_application": True,
        }
    ]
    for index in range(1, size):
        parent = (index - 1) // 3
        nodes.append(
            {
                "call_id": index,
                "parent_call_id": parent,
                "function_name": f"function_{index}",
                "file_path": f"app/module_{index % 7}.py",
                "line_number": index * 3,
                "duration": duration / size,
                "self_time": duration / size,
                "depth": 1 + index // 10,
                "call_order": (index - 1) % 3,
                "is_application": index % 2 == 0,
            }
        )
    return nodes


def make_batch(count: int) -> list[dict]:
    return [
        make_record(trace_id=uuid.uuid4().hex, duration=0.05, nodes=realistic_tree(0.05))
        for _ in range(count)
    ]


def raw_insert(store: Store, records: list[dict], batch: int) -> float:
    """Only the two insert_many calls are timed: the documents are prepared before."""
    valid, _ = validate_records(records)
    pairs = [split_record("bench", record) for record in valid]
    started = time.perf_counter()
    for offset in range(0, len(pairs), batch):
        chunk = pairs[offset : offset + batch]
        store.db["raw_trees"].insert_many([tree for _, tree in chunk], ordered=False)
        store.db["raw_records"].insert_many([lean for lean, _ in chunk], ordered=False)
    return time.perf_counter() - started


def collector_insert(url: str, key: str, records: list[dict], batch: int) -> float:
    """Bodies are encoded (JSON + gzip, as the SDK sends them) before the clock starts,
    as the raw baseline's documents are prepared before its clock starts."""
    headers = {"X-Project-Key": key, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    bodies = [
        (gzip.compress(json.dumps({"records": records[offset : offset + batch]}).encode(), 5),
         len(records[offset : offset + batch]))
        for offset in range(0, len(records), batch)
    ]  # fmt: skip
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        for body, count in bodies:
            answer = client.post(
                url + "/api/v1/performance/collect", content=body, headers=headers
            ).json()
            assert answer["code"] == 0 and answer["data"]["accepted"] == count, answer
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        server = EmbeddedServer(Path(home), port=free_port())
        url = server.ensure_running()
        store = Store(url, database="bench_ingest")
        store.ensure_indexes()
        collector = CollectorProcess(
            url, "bench_ingest", Path(home), PYSTRUMENT_RATE_LIMIT_PER_MINUTE="1000000"
        )
        collector.start()
        try:
            key = collector.create_project("bench")["project_key"]
            raw_rates, collector_rates, ratios = [], [], []
            for _ in range(args.rounds):
                records = make_batch(args.records)
                raw = args.records / raw_insert(store, records, args.batch)
                served = args.records / collector_insert(
                    collector.url, key, make_batch(args.records), args.batch
                )
                raw_rates.append(raw)
                collector_rates.append(served)
                ratios.append(served / raw)
            print(f"records per round: {args.records}, batch {args.batch}, rounds {args.rounds}")
            print(f"raw insert_many:   median {statistics.median(raw_rates):8.0f} records/s")
            print(f"collector ingest:  median {statistics.median(collector_rates):8.0f} records/s")
            print(
                f"ratio collector/raw: median {statistics.median(ratios):.2f} "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f}); budget >= 0.60"
            )
        finally:
            collector.stop()
            store.client.drop_database("bench_ingest")
            server.stop()


if __name__ == "__main__":
    main()
