"""Performance records (lean, filterable) and their call trees (one per record)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

import bson
from bson import Binary, ObjectId
from pymongo import DESCENDING

from pystrument_lab.store.identity import record_key, tree_id
from pystrument_lab.store.schema import (
    Collections,
    epoch,
    eq,
    insert_ignoring_duplicates,
    public,
    utcnow,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


class RecordFilters(TypedDict, total=False):
    """The record filters the API, the loaders and the analysis runner share."""

    route: str | None
    trace_id: str | None
    path: str | None
    method: str | None
    status_code: int | None
    app_version: str | None
    since: datetime | None
    until: datetime | None
    min_duration: float | None


def epoch_range(since: datetime | None, until: datetime | None) -> dict[str, float] | None:
    """``{"$gte": since, "$lt": until}`` in epoch seconds (None when unbounded)."""
    bounds: dict[str, float] = {}
    if since is not None:
        bounds["$gte"] = epoch(since)
    if until is not None:
        bounds["$lt"] = epoch(until)
    return bounds or None


def record_query(project_key: str, **filters: Unpack[RecordFilters]) -> dict[str, Any]:
    """The filter document for records (``None`` means "any").

    Equalities are ``$eq`` and times are ``ts`` epoch seconds, so the embedded
    server answers from an index (schema module doc).
    """
    query: dict[str, Any] = {"project_key": eq(project_key)}
    for field in ("route", "trace_id", "path", "status_code", "app_version"):
        if filters.get(field) is not None:
            query[field] = eq(filters[field])
    method = filters.get("method")
    if method is not None:
        query["method"] = eq(method.upper())
    span = epoch_range(filters.get("since"), filters.get("until"))
    if span is not None:
        query["ts"] = span
    min_duration = filters.get("min_duration")
    if min_duration is not None:
        query["total_duration"] = {"$gte": min_duration}
    return query


def split_record(
    project_key: str, record: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a validated SDK record into the lean record and its call-tree document.

    The record keeps the SPEC sections as sent plus top-level copies of the
    fields queries filter and sort on; the nodes and the compressed
    pyinstrument session go to ``call_trees``.
    """
    record = dict(record)
    nodes = record.pop("function_calls", None) or []
    application_root = record.pop("application_root", None)
    session = record.pop("profile_session", None)
    request = record.get("request_info") or {}
    response = record.get("response_info") or {}
    metrics = record.get("performance_metrics") or {}
    version = record.get("version_info") or {}
    now = utcnow()
    key = record_key(record["trace_id"], record.get("span_id"))
    lean = {
        **record,
        "record_key": key,
        "project_key": project_key,
        "method": request.get("method"),
        "path": request.get("path"),
        "route": request.get("route") or request.get("path"),
        "status_code": response.get("status_code"),
        "total_duration": metrics.get("total_duration"),
        "app_version": version.get("app_version") or "",
        "ts": _epoch_of(record.get("timestamp")),
        "has_tree": bool(nodes),
        "node_count": len(nodes),
        "created_at": now,
    }
    tree = {
        "_id": tree_id(project_key, key),
        "project_key": project_key,
        "record_key": key,
        "trace_id": lean["trace_id"],
        "timestamp": lean["timestamp"],
        "ts": lean["ts"],
        "route": lean["route"],
        "method": lean["method"],
        "app_version": lean["app_version"],
        "total_duration": lean["total_duration"],
        "nodes": nodes,
        "application_root": application_root,
        "session": Binary(session) if session else None,
        "created_at": now,
    }
    return lean, tree


def _epoch_of(value: Any) -> float | None:
    if isinstance(value, datetime):
        return epoch(value)
    if isinstance(value, str):
        try:
            return epoch(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def compress_session(session_json: str | bytes) -> bytes:
    """Compress a pyinstrument session's JSON the way ``call_trees.session`` stores it."""
    data = session_json.encode() if isinstance(session_json, str) else session_json
    return zlib.compress(data, 6)


class RecordQueries(Collections):
    """``performance_records`` and ``call_trees``."""

    def insert_records(
        self, project_key: str, records: Sequence[Mapping[str, Any]]
    ) -> tuple[int, int]:
        """Store validated records idempotently; return (accepted, duplicates).

        A record whose (project_key, record_key) is already stored is a
        duplicate and leaves the stored one untouched: a resent batch stores
        nothing, while two requests of one trace (their own span ids) are two
        records. Trees are written
        before records so a record never points at a tree that is missing.
        """
        if not records:
            return 0, 0
        pairs = [split_record(project_key, record) for record in records]
        trees = [tree for _, tree in pairs]
        insert_ignoring_duplicates(self.call_trees, trees)
        try:
            inserted = insert_ignoring_duplicates(self.records, [lean for lean, _ in pairs])
        except Exception:
            # Leave no tree without its record: remove the trees this call
            # wrote for records that were not stored.
            self._drop_orphan_trees(project_key, trees)
            raise
        return inserted, len(pairs) - inserted

    def _drop_orphan_trees(self, project_key: str, trees: Sequence[Mapping[str, Any]]) -> None:
        stored = {
            doc["record_key"]
            for doc in self.records.find(
                {
                    "project_key": {"$eq": project_key},
                    "record_key": {"$in": [tree["record_key"] for tree in trees]},
                },
                {"record_key": 1},
            )
        }
        orphans = [tree["_id"] for tree in trees if tree["record_key"] not in stored]
        if orphans:
            self.call_trees.delete_many({"_id": {"$in": orphans}})

    def get_record_by_id(self, record_id: str) -> dict[str, Any] | None:
        if not ObjectId.is_valid(record_id):
            return None
        return public(self.records.find_one({"_id": ObjectId(record_id)}))

    def get_call_tree(self, project_key: str, key: str) -> dict[str, Any] | None:
        """The call tree of the record with this :func:`record_key`."""
        document = self.call_trees.find_one({"_id": tree_id(project_key, key)})
        if document is None:  # trees stored before their _id was the key
            document = self.call_trees.find_one(
                {"project_key": eq(project_key), "record_key": eq(key)}
            )
        found = public(document)
        if found is not None and found.get("session") is not None:
            found["session"] = bytes(found["session"])
        return found

    def call_tree_nodes(
        self, project_key: str, keys: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """The nodes of the call trees of these records, by record key (one ``_id`` ``$in``)."""
        ids = [tree_id(project_key, key) for key in keys]
        found = {
            doc["record_key"]: doc.get("nodes") or []
            for doc in self.call_trees.find({"_id": {"$in": ids}}, {"record_key": 1, "nodes": 1})
        }
        for key in keys:  # trees stored before their _id was the key
            if key not in found:
                tree = self.get_call_tree(project_key, key)
                if tree is not None:
                    found[key] = tree.get("nodes") or []
        return found

    def iter_call_trees(
        self,
        project_key: str,
        *,
        route: str | None = None,
        app_version: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Call trees (without sessions), newest first."""
        query: dict[str, Any] = {"project_key": eq(project_key)}
        if route is not None:
            query["route"] = eq(route)
        if app_version is not None:
            query["app_version"] = eq(app_version)
        span = epoch_range(since, until)
        if span is not None:
            query["ts"] = span
        cursor = self.call_trees.find(query, {"session": 0}).sort("ts", DESCENDING)
        if limit is not None:
            cursor = cursor.limit(limit)
        yield from cursor

    def count_version_records(self, project_key: str, app_version: str) -> int:
        """How many records of one app version are stored (exact: a full count)."""
        return self.records.count_documents(
            {"project_key": eq(project_key), "app_version": eq(app_version)}
        )


#: What one stored document may weigh: MongoDB's 16 MiB BSON limit less headroom.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024


def unstorable_reason(document: Mapping[str, Any]) -> str | None:
    """Why the store could not write this record or its tree, or None when it can.

    The collector checks each record before anything is written, so a record
    the store would refuse is rejected alone instead of failing its batch.
    """
    lean, tree = split_record("", document)
    try:
        for part in (lean, tree):
            if len(bson.encode(part)) > MAX_DOCUMENT_BYTES:
                return "the record is too large to store; send a smaller tree or body"
    except (bson.errors.InvalidDocument, OverflowError, UnicodeEncodeError, ValueError) as exc:
        return f"the record cannot be stored: {type(exc).__name__}"
    return None


__all__ = [
    "RecordFilters",
    "RecordQueries",
    "compress_session",
    "epoch_range",
    "record_query",
    "split_record",
    "unstorable_reason",
    "tree_id",
]
