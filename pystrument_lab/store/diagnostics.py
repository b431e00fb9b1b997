"""The shared rate limit, heartbeats and what ``pystrument doctor`` reads."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from pystrument_lab.errors import StoreUnavailable
from pystrument_lab.store.schema import (
    CALL_TREES,
    INDEXES,
    RATE_WINDOWS,
    RECORDS,
    SCHEDULER_STATE,
    UNKNOWN_KEY_LIMIT,
    UNKNOWN_KEYS,
    Collections,
    as_utc,
    epoch,
    eq,
    public,
)


class DiagnosticQueries(Collections):
    """Rate-limit windows, process heartbeats, unknown keys and store health figures."""

    def count_in_window(self, key: str, window: int) -> tuple[int, int]:
        """Count one request of ``key`` in the numbered window: (count now, previous window's).

        One document per key and window, addressed by its ``_id`` (the one
        lookup the embedded server always serves from an index), so every
        collector process behind a load balancer shares the same counts.
        """
        windows = self.db[RATE_WINDOWS]
        previous = windows.find_one({"_id": f"{window - 1}:{key}"}, {"count": 1})
        before = int(previous["count"]) if previous else 0
        ident = f"{window}:{key}"
        for _ in range(2):
            document = windows.find_one_and_update(
                {"_id": ident},
                {"$inc": {"count": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if document is not None:
                return int(document["count"]), before
            try:
                windows.insert_one({"_id": ident, "window": window, "count": 1})
            except DuplicateKeyError:
                continue  # another collector opened the window first: count in it
            windows.delete_many({"window": {"$lt": window - 1}})
            return 1, before
        raise StoreUnavailable("the rate-limit window could not be counted")

    def uncount_in_window(self, key: str, window: int) -> None:
        """Take back a request :meth:`count_in_window` counted and the limit refused."""
        self.db[RATE_WINDOWS].update_one({"_id": f"{window}:{key}"}, {"$inc": {"count": -1}})

    def missing_indexes(self) -> list[str]:
        """Indexes of :data:`INDEXES` the database lacks, as ``collection(field, field)``.

        Compared by their fields only: the embedded server keeps no direction.
        """
        missing = []
        for name, indexes in INDEXES.items():
            present = {
                tuple(field for field, _ in info["key"])
                for info in self.db[name].index_information().values()
            }
            for index in indexes:
                fields = tuple(index.document["key"])
                if fields not in present:
                    missing.append(f"{name}({', '.join(fields)})")
        return missing

    def beat(self, kind: str, name: str, **info: Any) -> None:
        """Publish that the ``kind`` process ``name`` is alive now (epoch seconds).

        Workers beat into ``scheduler_state`` beside the schedulers' own
        documents, so one collection answers "who is alive".
        """
        self.db[SCHEDULER_STATE].update_one(
            {"kind": kind, "name": name},
            {"$set": {**info, "heartbeat": time.time()}},
            upsert=True,
        )

    def retire(self, kind: str, name: str) -> None:
        self.db[SCHEDULER_STATE].delete_one({"kind": kind, "name": name})

    def heartbeats(self, kind: str) -> list[dict[str, Any]]:
        """Every ``kind`` process that has beaten and not retired, newest first."""
        cursor = self.db[SCHEDULER_STATE].find({"kind": kind}, {"_id": 0})
        return sorted(cursor, key=lambda doc: -float(doc.get("heartbeat") or 0))

    def note_unknown_key(self, key: str) -> None:
        """Remember that an SDK presented an unknown project key (its first 8 characters).

        At most :data:`UNKNOWN_KEY_LIMIT` distinct prefixes are kept, so
        random keys cannot grow the collection without bound.
        """
        prefix = key[:8] + "…"
        keys = self.db[UNKNOWN_KEYS]
        seen = {"$set": {"last_seen": time.time(), "length": len(key)}, "$inc": {"count": 1}}
        if keys.update_one({"_id": prefix}, seen).matched_count:
            return
        if keys.estimated_document_count() < UNKNOWN_KEY_LIMIT:
            try:
                now = time.time()
                keys.insert_one(
                    {"_id": prefix, "count": 1, "first_seen": now, "last_seen": now}
                    | {"length": len(key)}
                )
            except DuplicateKeyError:
                keys.update_one({"_id": prefix}, seen)

    def unknown_keys(self, since: float) -> list[dict[str, Any]]:
        """Unknown project keys presented since ``since`` (epoch seconds), latest first."""
        cursor = self.db[UNKNOWN_KEYS].find({"last_seen": {"$gte": since}})
        found = [
            {"prefix": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}} for doc in cursor
        ]
        return sorted(found, key=lambda doc: -float(doc["last_seen"]))

    def save_sdk_report(self, project_key: str, report: Mapping[str, Any]) -> None:
        """Keep the latest trouble report an SDK process sent for the project."""
        self.projects.update_one(
            {"project_key": eq(project_key)},
            {"$set": {"sdk_report": {**report, "received": time.time()}}},
        )

    def last_record_time(self, project_key: str) -> datetime | None:
        """The timestamp of the project's newest stored record (through the ``ts`` index)."""
        document = self.records.find_one(
            {"project_key": eq(project_key)}, {"timestamp": 1}, sort=[("ts", DESCENDING)]
        )
        return as_utc(document["timestamp"]) if document else None

    def last_metric_time(self, project_key: str) -> datetime | None:
        """The start of the project's newest hourly metric document."""
        document = self.endpoint_metrics.find_one(
            {"project_key": eq(project_key), "resolution": eq("1h")},
            {"bucket_start": 1},
            sort=[("bucket_epoch", DESCENDING)],
        )
        return as_utc(document["bucket_start"]) if document else None

    def analysis_outcomes(self, since: float) -> dict[str, Any]:
        """Analyses finished since ``since`` (epoch): counts by status, latest failure, waiting."""
        finished = list(
            self.analyses.find(
                {"completed_epoch": {"$gte": since}},
                {"status": 1, "completed_epoch": 1, "error": 1, "service": 1, "trace_id": 1},
            )
        )
        finished.sort(key=lambda doc: -float(doc.get("completed_epoch") or 0))
        failures = [doc for doc in finished if doc.get("status") == "failed"]
        return {
            "completed": sum(doc.get("status") == "completed" for doc in finished),
            "failed": len(failures),
            "latest": public(finished[0]) if finished else None,
            "latest_failure": public(failures[0]) if failures else None,
            "pending": self.analyses.count_documents({"status": eq("pending")}),
        }

    def record_growth(self, since: datetime) -> dict[str, int]:
        """Records stored since ``since``, all records, their data bytes (records and
        trees) and the database's storage size in bytes."""
        stats = self.db.command("dbstats")
        data = sum(
            int(self.db.command("collstats", name).get("size") or 0)
            for name in (RECORDS, CALL_TREES)
        )
        return {
            "records_since": self.records.count_documents({"ts": {"$gte": epoch(since)}}),
            "records": self.records.estimated_document_count(),
            "record_bytes": data,
            "storage_bytes": int(stats.get("storageSize") or stats.get("dataSize") or 0),
        }
