"""Performance records (lean, filterable) and their call trees (one per record)."""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

import bson
from bson import Binary, ObjectId
from pymongo import ASCENDING, DESCENDING

from pystrument_lab.errors import ParameterError
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
    path: str | None
    method: str | None
    status_code: int | None
    app_version: str | None
    since: datetime | None
    until: datetime | None
    min_duration: float | None


#: A listing counts its matches up to this many, then says "COUNT_LIMIT+"
#: (counting every match is a full pass over them: seconds at 100k records).
COUNT_LIMIT = 1000
#: The deepest offset ``skip`` (``page``/``size``) reaches; deeper pages
#: follow the cursor, which costs the same at any depth.
MAX_SKIP = 10_000


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
    for field in ("route", "path", "status_code", "app_version"):
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


#: Sort names the API accepts, and the stored field each one sorts on.
_SORTABLE = {
    "timestamp": "ts",
    "total_duration": "total_duration",
    "status_code": "status_code",
    "route": "route",
    "method": "method",
    "app_version": "app_version",
    "path": "path",
}
#: The time windows a newest-first ``min_duration`` page is looked for in
#: (seconds: an hour, then 8 × wider up to ~3.7 years; ``_find_sorted``).
_FIRST_WINDOW = 3600.0
_LAST_WINDOW = 3600.0 * 8**5
#: Sorts a cursor can page: a numeric field with few ties.
KEYSET_SORTS = ("ts", "total_duration")


def sort_spec(sort: str) -> tuple[str, int]:
    name = sort.lstrip("+-")
    if name not in _SORTABLE:
        raise ParameterError(f"cannot sort by {name!r}; choose one of {sorted(_SORTABLE)}")
    return _SORTABLE[name], DESCENDING if sort.startswith("-") else ASCENDING


@dataclass
class RecordPage:
    """One page of a listing: rows, the bounded count and the cursor of the next page."""

    items: list[dict[str, Any]]
    count: int
    count_exact: bool
    next_cursor: str | None


def encode_cursor(field: str, direction: int, value: Any, seen: Iterable[str]) -> str:
    raw = json.dumps({"f": field, "d": direction, "v": value, "s": sorted(seen)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str, direction: int) -> tuple[Any, set[str]]:
    """(last value, ids already shown at that value) of a cursor made for this sort."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, seen = raw["v"], {str(item) for item in raw["s"]}
        valid = (
            raw["f"] == field
            and raw["d"] == direction
            and isinstance(value, (int, float))
            and len(seen) <= 10_000
        )
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise ParameterError("cursor: not a cursor of this listing's sort; start from page 1")
    return value, seen


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
    lean = {
        **record,
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
        "_id": tree_id(project_key, lean["trace_id"]),
        "project_key": project_key,
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


def tree_id(project_key: str, trace_id: str) -> str:
    """A call tree's ``_id``: found by ``_id`` (``$in`` too), which the server indexes."""
    return f"{project_key}/{trace_id}"


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

        A record whose (project_key, trace_id) is already stored is a
        duplicate and leaves the stored one untouched. Trees are written
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
            doc["trace_id"]
            for doc in self.records.find(
                {
                    "project_key": {"$eq": project_key},
                    "trace_id": {"$in": [tree["trace_id"] for tree in trees]},
                },
                {"trace_id": 1},
            )
        }
        orphans = [tree["_id"] for tree in trees if tree["trace_id"] not in stored]
        if orphans:
            self.call_trees.delete_many({"_id": {"$in": orphans}})

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
        """Records matching the filters, newest first by default, and their count.

        The count stops at :data:`COUNT_LIMIT` (see :meth:`page_records`);
        callers that only want the rows (the loaders) pass ``with_total=False``
        and get ``len(items)``.
        """
        page = self.page_records(
            project_key,
            sort=sort,
            skip=skip,
            limit=limit,
            projection=projection,
            count=with_total,
            **filters,
        )
        return page.items, page.count

    def page_records(
        self,
        project_key: str,
        *,
        sort: str = "-timestamp",
        skip: int = 0,
        limit: int | None = 20,
        cursor: str | None = None,
        projection: Mapping[str, Any] | None = None,
        count: bool = True,
        **filters: Unpack[RecordFilters],
    ) -> RecordPage:
        """One page by offset (``skip`` ≤ :data:`MAX_SKIP`) or by ``cursor`` (any depth).

        A cursor page asks the index for ``value <= last`` (or ``>=``) and drops
        the rows the previous page already showed at that value, so ties are
        neither lost nor repeated. The count stops at :data:`COUNT_LIMIT` + 1
        matches (:meth:`count_records_upto`); ``count_exact`` says whether it
        stopped there.
        """
        query = record_query(project_key, **filters)
        counted = dict(query)  # the count is of every match, not of the rest after a cursor
        field, direction = sort_spec(sort)
        seen: set[str] = set()
        if cursor is not None:
            if field not in KEYSET_SORTS:
                raise ParameterError(
                    f"cursor: pages by cursor sort by one of {list(KEYSET_SORTS)}, not {sort!r}"
                )
            value, seen = decode_cursor(cursor, field, direction)
            bound = {"$lte" if direction == DESCENDING else "$gte": value}
            query[field] = {**query.get(field, {}), **bound}
            skip = 0
        elif skip > MAX_SKIP:
            raise ParameterError(
                f"page: offsets reach {MAX_SKIP} records; follow next_cursor for deeper pages"
            )
        wanted = None if limit is None else limit + len(seen)
        # A duration range sorted by time is the one listing whose rows the
        # count is needed for: it decides how they are read (_find_sorted).
        ranged = "total_duration" in counted and field == "ts" and direction == DESCENDING
        matches = self.count_records_upto(counted, COUNT_LIMIT + 1) if count or ranged else 0
        found = self._find_sorted(
            query,
            projection,
            field,
            direction,
            skip,
            wanted,
            by_window=ranged and matches > COUNT_LIMIT,
        )
        rows = [doc for doc in found if str(doc["_id"]) not in seen]
        if limit is not None:
            rows = rows[:limit]
        items: list[dict[str, Any]] = [public(doc) for doc in rows]  # type: ignore[misc]
        next_cursor = None
        if field in KEYSET_SORTS and limit is not None and len(rows) == limit and rows:
            last = rows[-1].get(field)
            if isinstance(last, (int, float)):
                at_last = {str(doc["_id"]) for doc in rows if doc.get(field) == last}
                if cursor is not None and value == last:
                    at_last |= seen
                next_cursor = encode_cursor(field, direction, last, at_last)
        if not count:
            return RecordPage(items, len(items), True, next_cursor)
        return RecordPage(items, min(matches, COUNT_LIMIT), matches <= COUNT_LIMIT, next_cursor)

    def _find_sorted(
        self,
        query: dict[str, Any],
        projection: Mapping[str, Any] | None,
        field: str,
        direction: int,
        skip: int,
        wanted: int | None,
        *,
        by_window: bool,
    ) -> list[dict[str, Any]]:
        """The first ``skip + wanted`` matches in sort order, less the first ``skip``.

        ``by_window``: newest first with a ``min_duration`` that matches more
        than :data:`COUNT_LIMIT` records. Given ``total_duration >= x`` and no
        ``ts`` range, the embedded server reads every match through the
        duration index and sorts them (0.4 s at 100k records for a filter
        matching 20 %); with a ``ts`` lower bound it walks the time index
        newest first and stops at the page. So the page is looked for in the
        newest hour before the upper bound, then in windows 8 × wider, until
        one holds it; the rows read stay about ``wanted`` / (the share of
        records matching), whatever the store holds. A filter that matches
        few records (the count stops below the limit) reads them all through
        the duration index: at most :data:`COUNT_LIMIT`.
        """

        def fetch(filter_: Mapping[str, Any]) -> list[dict[str, Any]]:
            found = self.records.find(filter_, projection).sort(field, direction).skip(skip)
            return list(found if wanted is None else found.limit(wanted))

        if not by_window or wanted is None:
            return fetch(query)
        bounds: dict[str, float] = dict(query.get("ts") or {})
        top = bounds.get("$lte", bounds.get("$lt", time.time()))
        floor = bounds.get("$gte")
        width = _FIRST_WINDOW
        while width <= _LAST_WINDOW and (floor is None or top - width > floor):
            rows = fetch({**query, "ts": {**bounds, "$gte": top - width}})
            if len(rows) == wanted:
                return rows
            width *= 8
        return fetch(query)

    def count_records_upto(self, query: Mapping[str, Any], bound: int) -> int:
        """How many records match ``query``, counting no further than ``bound``.

        ``$match`` + ``$limit`` + ``$count`` is one ``SELECT COUNT(*)`` over
        an index-served ``LIMIT`` on the embedded server (10-20 µs per match
        on a busy 2-core machine). ``count_documents(limit=)`` reads and
        decodes every match instead (seconds at 10k), and so does reading
        the matching ids (0.2-0.7 ms each: the server decodes the whole
        document to project ``_id``).
        """
        pipeline: list[dict[str, Any]] = [
            {"$match": dict(query)},
            {"$limit": bound},
            {"$count": "n"},
        ]
        counted = list(self.records.aggregate(pipeline))
        return int(counted[0]["n"]) if counted else 0

    def get_record(self, trace_id: str, project_key: str | None = None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"trace_id": eq(trace_id)}
        if project_key is not None:
            query["project_key"] = eq(project_key)
        return public(self.records.find_one(query))

    def get_record_by_id(self, record_id: str) -> dict[str, Any] | None:
        if not ObjectId.is_valid(record_id):
            return None
        return public(self.records.find_one({"_id": ObjectId(record_id)}))

    def get_call_tree(self, project_key: str, trace_id: str) -> dict[str, Any] | None:
        document = public(
            self.call_trees.find_one({"project_key": eq(project_key), "trace_id": eq(trace_id)})
        )
        if document is not None and document.get("session") is not None:
            document["session"] = bytes(document["session"])
        return document

    def call_tree_nodes(
        self, project_key: str, trace_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """The nodes of the call trees of these records, by trace id (one ``_id`` ``$in``)."""
        ids = [tree_id(project_key, trace_id) for trace_id in trace_ids]
        found = {
            doc["trace_id"]: doc.get("nodes") or []
            for doc in self.call_trees.find({"_id": {"$in": ids}}, {"trace_id": 1, "nodes": 1})
        }
        for trace_id in trace_ids:  # trees stored before their _id was the key
            if trace_id not in found:
                tree = self.get_call_tree(project_key, trace_id)
                if tree is not None:
                    found[trace_id] = tree.get("nodes") or []
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
    "COUNT_LIMIT",
    "MAX_SKIP",
    "RecordFilters",
    "RecordPage",
    "RecordQueries",
    "compress_session",
    "record_query",
    "sort_spec",
    "split_record",
    "unstorable_reason",
    "tree_id",
]
