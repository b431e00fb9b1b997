"""The data `store_growth.py` seeds: a week of one busy service, written in chunks.

Each chunk of records spreads over the whole week, so a store seeded part of
the way is already a uniform store of the records written so far. A seeded
database is described by ``growth_<size>.json`` in the store's home (project
keys, the record a detail page opens, when the seeding's week ended, how
many records are in), so a later run reuses it and only brings it up to
date: the records and metric points of the time since then are sent as a
live service would have sent them.
"""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import bson
import httpx

from collector.ingest import validate_records
from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record

ROUTES = [f"/api/r{index}/{{id}}" for index in range(8)]
DAYS = 7
WEEK = timedelta(days=DAYS)
SAMPLED = 0.1  # records per request: the metric stream counts 10 × the records
HTTP_BATCH = 100
CHUNK = 20_000  # records per chunk; each chunk covers the whole week
STORE_BATCH = 5_000  # records per Store.insert_records call when seeding directly


def tree(duration: float, route_index: int) -> list[dict[str, Any]]:
    nodes = [
        {"call_id": 0, "parent_call_id": None, "function_name": "handler", "file_path": "app.py",
         "line_number": 1, "duration": duration, "self_time": duration * 0.1, "depth": 0,
         "call_order": 0, "is_application": True}
    ]  # fmt: skip
    for index in range(1, 12):
        parent = (index - 1) // 3
        nodes.append(
            {"call_id": index, "parent_call_id": parent, "function_name": f"f{route_index}_{index}",
             "file_path": f"app/m{index % 4}.py", "line_number": index, "duration": duration / 12,
             "self_time": duration / 12, "depth": nodes[parent]["depth"] + 1, "call_order": (index - 1) % 3,
             "is_application": True}
        )  # fmt: skip
    return nodes


def records_between(
    count: int, start: datetime, end: datetime, seed: int, switch: datetime
) -> list[dict[str, Any]]:
    """``count`` records evenly from ``start`` to ``end``, oldest first; 2.0 from ``switch``."""
    rng = random.Random(seed)
    step = (end - start) / max(count, 1)
    out = []
    for index in range(count):
        at = start + step * (index + 1)
        route_index = index % len(ROUTES)
        newer = at >= switch
        duration = rng.lognormvariate(-3, 0.6) * (1.3 if newer else 1.0)
        out.append(
            make_record(
                trace_id=uuid.uuid4().hex,
                route=ROUTES[route_index],
                path=ROUTES[route_index].replace("{id}", str(index % 50)),
                method="POST" if index % 5 == 0 else "GET",
                status=500 if index % 100 == 7 else 200,
                duration=duration,
                app_version="2.0" if newer else "1.0",
                timestamp=at,
                nodes=tree(duration, route_index),
            )
        )
    return out


def metric_points(
    weekly_records: int,
    start: datetime,
    end: datetime,
    routes: list[str],
    slot_seconds: int,
    switch: datetime,
) -> list[dict[str, Any]]:
    """The metric stream of ``weekly_records / SAMPLED`` requests a week, ``start``–``end``."""
    week_slots = int(WEEK.total_seconds()) // slot_seconds
    per_point = max(1, round(weekly_records / SAMPLED / (week_slots * len(routes))))
    points = []
    slots = int((end - start).total_seconds()) // slot_seconds
    for slot in range(slots):
        at = start + timedelta(seconds=slot * slot_seconds)
        version = "2.0" if at >= switch else "1.0"
        for route in routes:
            point = make_metric([0.05] * per_point, route=route, start=at, app_version=version)
            point["interval_start"] = datetime.fromisoformat(point["interval_start"])
            points.append(point)
    return points


def other_routes(size: int) -> list[str]:
    """The second project's routes: one per 5,000 records of the measured size."""
    return [f"/other/{index}" for index in range(max(8, size // 5000))]


def post_records(client: httpx.Client, url: str, key: str, records: list[dict[str, Any]]) -> None:
    headers = {"X-Project-Key": key, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    for offset in range(0, len(records), HTTP_BATCH):
        chunk = records[offset : offset + HTTP_BATCH]
        body = gzip.compress(json.dumps({"records": chunk}).encode(), 5)
        answer = client.post(url + "/api/v1/performance/collect", content=body, headers=headers)
        assert answer.status_code == 200 and answer.json()["data"]["accepted"] == len(chunk), (
            answer.text[:300]
        )


@dataclass
class Seeded:
    """What a later run needs to know of a seeded database."""

    size: int
    other_size: int
    key: str
    other: str
    old_trace: str
    week_end: str  # ISO time the seeded week ends at (moved on by each top-up)
    switch: str  # ISO time version 2.0 starts
    done: int = 0  # shop records written so far
    complete: bool = False

    @staticmethod
    def path(home: Path, size: int) -> Path:
        return home / f"growth_{size}.json"

    @classmethod
    def load(cls, home: Path, size: int) -> Seeded | None:
        try:
            return cls(**json.loads(cls.path(home, size).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, home: Path) -> None:
        self.path(home, self.size).write_text(json.dumps(asdict(self)))


def _chunk(args: tuple[int, str, str, int, str, bool]) -> list[dict[str, Any]]:
    """One chunk of records: as the SDK sends them, or validated for the store."""
    count, start, end, seed, switch, validate = args
    batch = records_between(
        count,
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
        seed,
        datetime.fromisoformat(switch),
    )
    if not validate:
        return batch
    valid, rejected = validate_records(batch)
    assert not rejected, rejected[:3]
    return valid


Span = tuple[int, str, str, int, str, bool]


def plan_chunks(seeded: Seeded, http_limit: int) -> list[tuple[str, int, Span]]:
    """(project key, records before it, span) of every chunk of both projects, in
    writing order: ``other``'s, then ``shop``'s. A span's last item says whether it
    starts at ``http_limit`` or later (validated here and written directly, not
    sent); the chunk that ``http_limit`` falls in is split there."""
    week_end = datetime.fromisoformat(seeded.week_end)
    switch = datetime.fromisoformat(seeded.switch)
    plan = []
    for key, size, seed in ((seeded.other, seeded.other_size, 2), (seeded.key, seeded.size, 1)):
        starts = sorted({*range(0, size, CHUNK), *([http_limit] if 0 < http_limit < size else [])})
        for done, following in zip(starts, [*starts[1:], size], strict=True):
            end = week_end - timedelta(seconds=done * 1e-3)  # chunks never share a timestamp
            span = (
                following - done,
                (end - WEEK + timedelta(minutes=10)).isoformat(),
                end.isoformat(),
                seed * 1_000_003 + done,
                switch.isoformat(),
                done >= http_limit,
            )
            plan.append((key, done, span))
    return plan


def _generated(plan: list[tuple[str, int, Span]]) -> Iterator[tuple[str, int, Span, list]]:
    """Each chunk of ``plan`` with its records, the next one made in a second process
    while the caller writes this one."""
    with ProcessPoolExecutor(1) as pool:
        futures = [pool.submit(_chunk, span) for _, _, span in plan[:2]]
        for index, (key, done, span) in enumerate(plan):
            batch = futures[index].result()
            if index + 2 < len(plan):
                futures.append(pool.submit(_chunk, plan[index + 2][2]))
            yield key, done, span, batch


def seed_records(
    store: Store,
    http: httpx.Client,
    url: str,
    home: Path,
    seeded: Seeded,
    http_limit: int,
    progress: Any = None,
    *,
    leave_direct: bool = False,
) -> list[tuple[str, int, Span]]:
    """Write the records of both projects: over HTTP up to ``http_limit`` per project, then
    validated documents through ``Store.insert_records`` in big batches.

    Generation and validation of the next chunk run in a second process while
    the store writes the current one. ``seeded.done`` is saved after every chunk.
    With ``leave_direct`` the chunks past ``http_limit`` are left out and
    returned, for :func:`write_direct` with the server stopped.
    """
    plan = plan_chunks(seeded, http_limit)
    left = [item for item in plan if item[2][-1]] if leave_direct else []
    for key, done, span, batch in _generated([item for item in plan if item not in left]):
        if key == seeded.key and done == 0:
            seeded.old_trace = batch[0]["trace_id"]
        if not span[-1]:
            post_records(http, url, key, batch)
        else:
            for offset in range(0, len(batch), STORE_BATCH):
                store.insert_records(key, batch[offset : offset + STORE_BATCH])
        if key == seeded.key:
            seeded.done = done + len(batch)
            seeded.save(home)
            if progress is not None:
                progress(seeded)
    seeded.complete = not left
    seeded.save(home)
    return left


def as_received(document: dict[str, Any]) -> dict[str, Any]:
    """A document as nx-27017 hands it to neosqlite after receiving it from pymongo:
    BSON-encoded and decoded with the server's default codec (naive UTC
    datetimes, lists for tuples), then its ObjectIds made neosqlite's."""
    from nx_27017.utils import convert_bson_to_neo_objectids

    return convert_bson_to_neo_objectids(bson.decode(bson.encode(document)))  # type: ignore[no-any-return]


def _row(document: dict[str, Any]) -> tuple[str, str]:
    """The (data, _id) row neosqlite's ``insert_one`` (``_internal_insert``) writes for
    a received document that has its ``_id``: bytes made ``Binary``, the JSON of
    its encoder, the ``_id`` as a string (its own JSON check left out: the encoder
    writes valid JSON)."""
    from neosqlite.collection.json_helpers import neosqlite_json_dumps
    from neosqlite.collection.query_helper.utils import _convert_bytes_to_binary

    received = _convert_bytes_to_binary(as_received(document))
    return neosqlite_json_dumps(received), str(received["_id"])


def _chunk_rows(args: tuple[str, Span]) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """One chunk of validated records as the (data, _id) rows of its trees and its
    records (:func:`_row`), and the trace id of its first record."""
    from pystrument_lab.store.records import split_record

    key, span = args
    pairs = [split_record(key, record) for record in _chunk(span)]
    trees = [_row(tree) for _, tree in pairs]
    records = [_row({**lean, "_id": bson.ObjectId()}) for lean, _ in pairs]
    return pairs[0][0]["trace_id"], trees, records


def write_direct(
    db_file: Path,
    home: Path,
    seeded: Seeded,
    plan: list[tuple[str, int, Span]],
    progress: Any = None,
    until: float | None = None,
) -> bool:
    """Write the chunks of ``plan`` into the store's SQLite file of this database,
    with the server stopped; True when every chunk is in.

    The same documents ``Store.insert_records`` writes (``split_record``, a
    fresh ObjectId per record as pymongo gives it, then what the server does
    with a received document: :func:`as_received`, then the row neosqlite's
    ``insert_one`` writes, :func:`_row`), trees then records. Two processes
    make the rows; this one writes each chunk in one transaction and one
    ``executemany`` instead of a transaction per document. ``until`` (epoch
    seconds): stop after the chunk that ends past it. The indexes the store
    created stay in place and are kept up to date inside each transaction
    (a 1 GiB page cache holds them).
    """
    from neosqlite import Connection

    from pystrument_lab.store.schema import CALL_TREES, RECORDS

    if not db_file.exists():
        raise FileNotFoundError(f"{db_file}: the database must exist (created by the server)")
    conn = Connection(str(db_file))  # WAL and incremental auto-vacuum, as the server opens it
    written = 0
    try:
        conn.db.execute("PRAGMA cache_size = -1048576")
        conn.db.execute("PRAGMA synchronous = OFF")  # a failed seeding is started again
        with ProcessPoolExecutor(2) as pool:
            futures = [pool.submit(_chunk_rows, (key, span)) for key, _, span in plan[:3]]
            for index, (key, done, span) in enumerate(plan):
                first, tree_rows, record_rows = futures[index].result()
                if index + 3 < len(plan):
                    following = plan[index + 3]
                    futures.append(pool.submit(_chunk_rows, (following[0], following[2])))
                if key == seeded.key and done == 0:
                    seeded.old_trace = first
                conn.db.execute("BEGIN")
                conn.db.executemany(
                    f'INSERT INTO "{CALL_TREES}"(data, _id) VALUES (?, ?)', tree_rows
                )
                conn.db.executemany(
                    f'INSERT INTO "{RECORDS}"(data, _id) VALUES (?, ?)', record_rows
                )
                conn.db.execute("COMMIT")
                written += 1
                if key == seeded.key:
                    seeded.done = done + span[0]
                    seeded.save(home)
                    if progress is not None:
                        progress(seeded)
                if until is not None and time.time() > until:
                    for future in futures:
                        future.cancel()
                    break  # a uniform store of the records written so far (module doc)
    finally:
        conn.close()
    return written == len(plan)


def seed_metrics(store: Store, seeded: Seeded, slot_seconds: int) -> None:
    week_end = datetime.fromisoformat(seeded.week_end)
    switch = datetime.fromisoformat(seeded.switch)
    start = week_end - WEEK
    for key, routes in ((seeded.key, ROUTES), (seeded.other, other_routes(seeded.size))):
        stream = metric_points(seeded.size, start, week_end, routes, slot_seconds, switch)
        for offset in range(0, len(stream), 1000):
            store.add_metrics(key, stream[offset : offset + 1000])


def top_up(
    store: Store,
    http: httpx.Client,
    url: str,
    home: Path,
    seeded: Seeded,
    now: datetime,
    slot_seconds: int,
) -> int:
    """Send what the service would have sent since the seeded week ended; return records sent."""
    week_end = datetime.fromisoformat(seeded.week_end)
    if now <= week_end:
        return 0
    switch = datetime.fromisoformat(seeded.switch)
    per_second = seeded.done / WEEK.total_seconds()
    count = round(per_second * (now - week_end).total_seconds())
    if count:
        batch = records_between(count, week_end, now, random.randrange(1 << 30), switch)
        post_records(http, url, seeded.key, batch)
    slots_end = week_end + timedelta(
        seconds=(now - week_end).total_seconds() // slot_seconds * slot_seconds
    )
    for key, routes in ((seeded.key, ROUTES), (seeded.other, other_routes(seeded.size))):
        stream = metric_points(seeded.size, week_end, slots_end, routes, slot_seconds, switch)
        for offset in range(0, len(stream), 1000):
            store.add_metrics(key, stream[offset : offset + 1000])
    seeded.week_end = now.isoformat()
    seeded.save(home)
    return count
