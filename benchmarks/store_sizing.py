"""How much the store grows per sampled request, for sizing (docs/deploy.md).

Starts an embedded store and a real collector, runs a small Flask app with
the SDK at a 100 % sampling rate through Werkzeug's test client (the SDK
sends over real HTTP), and measures what was stored: the BSON size of each
record and call-tree document (what a real MongoDB stores before its
compression), the metric documents, and the embedded store's bytes on disk
per record. Prints the figures and the growth per day for a few traffic
levels and sampling rates.

    .venv/bin/python benchmarks/store_sizing.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import bson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from pystrument_lab.store import Store  # noqa: E402
from tests.utils.services import CollectorProcess  # noqa: E402


def build_app(project_key: str, endpoint: str):  # type: ignore[no-untyped-def]
    import sqlite3

    from flask import Flask, jsonify
    from performance_monitor.flask.middleware import PerformanceMiddleware

    app = Flask("shop")
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("create table item (id integer primary key, name text, price real)")
    db.executemany(
        "insert into item (name, price) values (?, ?)", [(f"item {n}", n * 1.5) for n in range(500)]
    )

    def digest(text: str, rounds: int) -> str:
        value = text.encode()
        for _ in range(rounds):
            value = hashlib.sha256(value).digest()
        return value.hex()

    @app.get("/items")
    def listing():  # type: ignore[no-untyped-def]
        rows = db.execute("select id, name, price from item order by price limit 50").fetchall()
        return jsonify([{"id": r[0], "name": r[1], "price": r[2]} for r in rows])

    @app.get("/items/<int:item_id>")
    def detail(item_id: int):  # type: ignore[no-untyped-def]
        row = db.execute("select id, name, price from item where id = ?", (item_id,)).fetchone()
        return jsonify({"id": row[0], "name": row[1], "token": digest(row[1], 2000)})

    @app.get("/report")
    def report():  # type: ignore[no-untyped-def]
        total = sum(
            db.execute("select price from item where id = ?", (n,)).fetchone()[0]
            for n in range(1, 60)
        )
        return jsonify({"total": total, "check": digest(str(total), 5000)})

    PerformanceMiddleware(
        app,
        {
            "project_key": project_key,
            "api_endpoint": endpoint,
            "sampling_rate": 1.0,
            "remote_config": False,
            "batch_size": 50,
            "batch_timeout": 0.5,
            "metrics_interval": 1.0,
        },
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pystrument-growth-"))
    server = EmbeddedServer(home, port=free_port())
    url = server.ensure_running()
    database = "growth_" + uuid.uuid4().hex[:8]
    collector = CollectorProcess(url, database, home)
    collector.start()
    store = Store(url, database=database)
    try:
        project = collector.create_project("growth", sampling_rate=1.0)
        data_files = list(server.data_dir.glob("**/*"))
        disk_before = sum(path.stat().st_size for path in data_files if path.is_file())
        app = build_app(project["project_key"], collector.url)
        client = app.test_client()
        paths = ["/items", "/items/7", "/items/123", "/report"]
        for n in range(args.requests):
            response = client.get(paths[n % len(paths)])
            assert response.status_code == 200
            response.close()  # the SDK finishes a request when the server closes its body
        import performance_monitor

        assert performance_monitor.flush(60.0)
        records = list(store.records.find({}))
        trees = list(store.call_trees.find({}))
        metrics = list(store.endpoint_metrics.find({}))
        disk_after = sum(
            path.stat().st_size for path in server.data_dir.glob("**/*") if path.is_file()
        )
        record_bytes = [len(bson.encode(doc)) for doc in records]
        tree_bytes = [len(bson.encode(doc)) for doc in trees]
        session_bytes = [len(doc["session"] or b"") for doc in trees]
        nodes = [len(doc["nodes"]) for doc in trees]
        metric_bytes = [len(bson.encode(doc)) for doc in metrics]
        per_record_disk = (disk_after - disk_before) / len(records)
        result = {
            "records": len(records),
            "record_bson_median": statistics.median(record_bytes),
            "tree_bson_median": statistics.median(tree_bytes),
            "tree_bson_p95": sorted(tree_bytes)[int(len(tree_bytes) * 0.95)],
            "session_bytes_median": statistics.median(session_bytes),
            "tree_nodes_median": statistics.median(nodes),
            "metric_documents": len(metrics),
            "metric_bson_median": statistics.median(metric_bytes),
            "embedded_disk_bytes_per_record": round(per_record_disk),
        }
        print(json.dumps(result, indent=2))
        bson_per_record = result["record_bson_median"] + result["tree_bson_median"]
        print("\nstore growth per day (records + trees; BSON, and on the embedded store's disk):")
        for rate in (10, 100, 1000):
            for sampling in (0.01, 0.1, 0.3):
                per_day = rate * 86_400 * sampling
                print(
                    f"  {rate:>5} req/s, sampling {sampling:>4.0%}: {per_day:>12,.0f} records, "
                    f"{per_day * bson_per_record / 1e9:7.2f} GB BSON, "
                    f"{per_day * per_record_disk / 1e9:7.2f} GB embedded"
                )
    finally:
        store.close()
        collector.stop()
        server.stop()


if __name__ == "__main__":
    main()
