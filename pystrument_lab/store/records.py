"""Performance records (lean, filterable) and their call trees (one per record)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from bson import Binary, ObjectId
from pymongo import ASCENDING, DESCENDING

from pystrument_lab.errors import ParameterError
from pystrument_lab.store.schema import (
    Collections,
    add_range,
    insert_ignoring_duplicates,
    public,
    utcnow,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


class RecordFilters(TypedDict, total=False):
    """The record filters the API, the loaders and the analysis runner share."""

    route: str | None
    path: str | None
    method: str | None
    status_code: int | None
    app_version: str | None
    since: datetime | None
    until: datetime | None
    min_duration: float | None


def record_query(project_key: str, **filters: Unpack[RecordFilters]) -> dict[str, Any]:
    """The filter document for records (``None`` means "any")."""
    query: dict[str, Any] = {"project_key": project_key}
    for field in ("route", "path", "status_code", "app_version"):
        if filters.get(field) is not None:
            query[field] = filters[field]
    method = filters.get("method")
    if method is not None:
        query["method"] = method.upper()
    add_range(query, "timestamp", filters.get("since"), filters.get("until"))
    min_duration = filters.get("min_duration")
    if min_duration is not None:
        query["total_duration"] = {"$gte": min_duration}
    return query


_SORTABLE = {"timestamp", "total_duration", "status_code", "route", "method", "app_version", "path"}


def sort_spec(sort: str) -> tuple[str, int]:
    field = sort.lstrip("+-")
    if field not in _SORTABLE:
        raise ParameterError(f"cannot sort by {field!r}; choose one of {sorted(_SORTABLE)}")
    return field, DESCENDING if sort.startswith("-") else ASCENDING


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
    session = record.pop("profile_session", None)
    request = record.get("request_info") or {}
    response = record.get("response_info") or {}
    metrics = record.get("performance_metrics") or {}
    version = record.get("version_info") or {}
    now = utcnow()
    lean = {
        **record,
        "project_key": project_key,
        "method": request.get("method"),
        "path": request.get("path"),
        "route": request.get("route") or request.get("path"),
        "status_code": response.get("status_code"),
        "total_duration": metrics.get("total_duration"),
        "app_version": version.get("app_version") or "",
        "has_tree": bool(nodes),
        "node_count": len(nodes),
        "created_at": now,
    }
    tree = {
        "project_key": project_key,
        "trace_id": lean["trace_id"],
        "timestamp": lean["timestamp"],
        "route": lean["route"],
        "method": lean["method"],
        "app_version": lean["app_version"],
        "total_duration": lean["total_duration"],
        "nodes": nodes,
        "session": Binary(session) if session else None,
        "created_at": now,
    }
    return lean, tree


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

        A record whose (project_key, trace_id) is already stored is a
        duplicate and leaves the stored one untouched. Trees are written
        before records so a record never points at a tree that is missing.
        """
        if not records:
            return 0, 0
        pairs = [split_record(project_key, record) for record in records]
        insert_ignoring_duplicates(self.call_trees, [tree for _, tree in pairs])
        inserted = insert_ignoring_duplicates(self.records, [lean for lean, _ in pairs])
        return inserted, len(pairs) - inserted

    def find_records(
        self,
        project_key: str,
        *,
        sort: str = "-timestamp",
        skip: int = 0,
        limit: int | None = 20,
        projection: Mapping[str, Any] | None = None,
        with_total: bool = True,
        **filters: Unpack[RecordFilters],
    ) -> tuple[list[dict[str, Any]], int]:
        """Records matching the filters, newest first by default, and their total count."""
        query = record_query(project_key, **filters)
        field, direction = sort_spec(sort)
        cursor = self.records.find(query, projection).sort(field, direction).skip(skip)
        if limit is not None:
            cursor = cursor.limit(limit)
        items = [public(doc) for doc in cursor]
        # Counting costs a second pass over the matches; callers that only
        # want the rows (the loaders) skip it and get len(items).
        total = self.records.count_documents(query) if with_total else len(items)
        return items, total  # type: ignore[return-value]

    def iter_records(
        self, query: Mapping[str, Any], projection: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        yield from self.records.find(dict(query), projection)

    def get_record(self, trace_id: str, project_key: str | None = None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"trace_id": trace_id}
        if project_key is not None:
            query["project_key"] = project_key
        return public(self.records.find_one(query))

    def get_record_by_id(self, record_id: str) -> dict[str, Any] | None:
        if not ObjectId.is_valid(record_id):
            return None
        return public(self.records.find_one({"_id": ObjectId(record_id)}))

    def get_call_tree(self, project_key: str, trace_id: str) -> dict[str, Any] | None:
        document = public(
            self.call_trees.find_one({"project_key": project_key, "trace_id": trace_id})
        )
        if document is not None and document.get("session") is not None:
            document["session"] = bytes(document["session"])
        return document

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
        query: dict[str, Any] = {"project_key": project_key}
        if route is not None:
            query["route"] = route
        if app_version is not None:
            query["app_version"] = app_version
        add_range(query, "timestamp", since, until)
        cursor = self.call_trees.find(query, {"session": 0})
        if limit is not None:
            cursor = cursor.sort("timestamp", DESCENDING).limit(limit)
        yield from cursor

    def count_version_records(self, project_key: str, app_version: str) -> int:
        """How many records of one app version are stored (exact: a full count)."""
        return self.records.count_documents(
            {"project_key": project_key, "app_version": app_version}
        )


__all__ = [
    "RecordFilters",
    "RecordQueries",
    "compress_session",
    "record_query",
    "sort_spec",
    "split_record",
]
