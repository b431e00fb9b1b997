"""Record identity: a record's key, lookups by key or by trace id, and the migration to keys.

A sampled request is a span of a distributed trace: it shares the trace id
with the trace's other requests (a page calling the same API twice, retries,
a service calling itself) and has a span id of its own. ``<trace id>-<span
id>``, its :func:`record_key`, is what ingest deduplicates on, what its call
tree's ``_id`` holds and what every lookup of one record names; records sent
without a span id are keyed by their trace id. Lookups by trace id list every
record of the trace (:meth:`IdentityQueries.trace_records`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pystrument_lab.errors import ParameterError
from pystrument_lab.store.schema import STORE_META, Collections, eq, public

#: The most records :meth:`IdentityQueries.trace_records` returns for one trace.
TRACE_RECORD_LIMIT = 200


def trace_member(record: Mapping[str, Any]) -> dict[str, Any]:
    """What tells one request of a trace from the others: where, which span, what, when."""
    return {
        field: record.get(field)
        for field in (
            "record_key",
            "project_key",
            "trace_id",
            "span_id",
            "parent_span_id",
            "method",
            "path",
            "route",
            "status_code",
            "total_duration",
            "timestamp",
        )
    }


def record_key(trace_id: str, span_id: str | None = None) -> str:
    """A record's identity within its project: ``<trace id>-<span id>``.

    Requests of one distributed trace share the trace id, so the SDK gives
    each its own span id. A record sent without one (older SDKs, other
    senders) is keyed by its trace id alone, as every record stored before
    span ids existed is (:meth:`IdentityQueries.migrate_record_keys`).
    """
    return f"{trace_id}-{span_id}" if span_id else trace_id


def tree_id(project_key: str, key: str) -> str:
    """A call tree's ``_id`` (``key`` is the record's :func:`record_key`): found by
    ``_id`` (``$in`` too), which the server indexes."""
    return f"{project_key}/{key}"


class IdentityQueries(Collections):
    """One record by its key, the records of a trace, and the keys of old records."""

    def get_record(self, key: str, project_key: str | None = None) -> dict[str, Any] | None:
        """The record with this :func:`record_key` (the first one found in any project
        when ``project_key`` is None)."""
        query: dict[str, Any] = {"record_key": eq(key)}
        if project_key is not None:
            query["project_key"] = eq(project_key)
        return public(self.records.find_one(query))

    def trace_records(
        self, trace_id: str, project_key: str | None = None, *, limit: int = TRACE_RECORD_LIMIT
    ) -> list[dict[str, Any]]:
        """The records of one trace (every sampled request that shares its trace id),
        oldest first, in one project or all, at most ``limit``."""
        query: dict[str, Any] = {"trace_id": eq(trace_id)}
        if project_key is not None:
            query["project_key"] = eq(project_key)
        found = self.records.find(query).limit(limit)
        return sorted(
            (public(doc) for doc in found),  # type: ignore[misc]
            key=lambda doc: (doc.get("ts") or 0.0, doc.get("record_key") or ""),
        )

    def resolve_record(self, ref: str, project_key: str | None = None) -> dict[str, Any]:
        """The record a user names: its record key, or a trace id the trace's only record has.

        Raises 404 when nothing matches, and 409 naming the trace's records
        (``data["records"]``) when several requests share the trace id.
        """
        found = self.get_record(ref, project_key)
        if found is not None:
            return found
        records = self.trace_records(ref, project_key)
        if len(records) == 1:
            return records[0]
        if not records:
            raise ParameterError(f"no record {ref!r}", status=404)
        raise ParameterError(
            f"trace {ref!r} has {len(records)} records; name one by its record key "
            f"(<trace id>-<span id>): {', '.join(r['record_key'] for r in records[:5])}"
            + (", ..." if len(records) > 5 else ""),
            status=409,
            data={"records": [trace_member(r) for r in records]},
        )

    def migrate_record_keys(self) -> None:
        """Key records, trees and analyses stored before span ids existed by their trace id.

        Drops the unique (project_key, trace_id) indexes first: requests of
        one trace share it. Then gives every document without a
        ``record_key`` its trace id (once per database, marked in
        ``store_meta``), so the unique (project_key, record_key) indexes
        hold on a real MongoDB too, which counts a missing field as a value.
        """
        for collection in (self.records, self.call_trees):
            for name, info in collection.index_information().items():
                keys = [field for field, _ in info["key"]]
                # The embedded server names indexes its own way: match on the keys.
                if info.get("unique") and keys == ["project_key", "trace_id"]:
                    collection.drop_index(name)
        meta = self.db[STORE_META]
        if meta.find_one({"_id": "record_keys"}) is not None:
            return
        for collection in (self.records, self.call_trees, self.analyses):
            for doc in collection.find({"record_key": {"$exists": False}}, {"trace_id": 1}):
                if doc.get("trace_id"):
                    collection.update_one(
                        {"_id": doc["_id"]}, {"$set": {"record_key": doc["trace_id"]}}
                    )
        meta.update_one({"_id": "record_keys"}, {"$set": {"done": True}}, upsert=True)


__all__ = [
    "TRACE_RECORD_LIMIT",
    "IdentityQueries",
    "record_key",
    "trace_member",
    "tree_id",
]
