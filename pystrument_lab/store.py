"""The one module that knows the store: collections, indexes and every query.

The collector, the workbench, the dashboard and the workers all go through
:class:`Store`. Known gaps of the embedded server that shape the code here:
index keys lose their direction (harmless for our filters), ``$set`` (and
``$max``/``$min``) of a top-level date stores a string (so a time that changes
after insert is set with ``$currentDate``: "now", server-side), and
``$inc`` on a dotted path inside an inserting upsert writes a literal dotted
key (so documents are created first), and date comparisons in filters ignore
milliseconds (a bound matches the whole second it falls in; metric buckets
start on whole minutes, so trends are exact). Queries stay within the subset that the embedded server
answers correctly (DESIGN §3): plain filters, projections, sorts on top-level
fields and upserts; anything statistical is computed in Python from
pre-aggregated documents.
"""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypedDict

import pymongo
from bson import Binary, ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from pystrument_lab.errors import (
    ParameterError,
    ProjectNameExists,
    ProjectNotFound,
    StoreUnavailable,
)
from pystrument_lab.settings import Settings, get_settings

if TYPE_CHECKING:
    from typing_extensions import Unpack

PROJECTS = "projects"
RECORDS = "performance_records"
CALL_TREES = "call_trees"
ENDPOINT_METRICS = "endpoint_metrics"
METRIC_BATCHES = "metric_batches"
ANALYSES = "ai_analysis_results"
REPORTS = "reports"
SCHEDULER_STATE = "scheduler_state"
JOB_RUNS = "job_runs"
RATE_WINDOWS = "rate_windows"
UNKNOWN_KEYS = "unknown_keys"

#: Resolutions that metric points are folded into at ingest, and their width.
RESOLUTIONS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "10m": timedelta(minutes=10),
    "1h": timedelta(hours=1),
}
#: How long the finer metric documents are kept: a window reaches back this far
#: at most to read them (``trends.window``); hourly documents follow the
#: retention of everything else. 1-minute documents are 60 × as many as hourly.
METRIC_RETENTION: dict[str, timedelta] = {"1m": timedelta(days=2), "10m": timedelta(days=14)}

#: How many distinct unknown project keys :meth:`Store.note_unknown_key` keeps.
UNKNOWN_KEY_LIMIT = 1000

PROJECT_STATUSES = ("active", "inactive", "archived")
FRAMEWORKS = ("flask", "django", "fastapi", "other")

#: Record fields copied to the top level so they can be filtered and sorted on.
RECORD_QUERY_FIELDS = (
    "method",
    "path",
    "route",
    "status_code",
    "total_duration",
    "app_version",
    "timestamp",
)

INDEXES: dict[str, list[IndexModel]] = {
    PROJECTS: [
        IndexModel([("project_key", ASCENDING)], unique=True),
        IndexModel([("name", ASCENDING)], unique=True),
    ],
    RECORDS: [
        IndexModel([("project_key", ASCENDING), ("trace_id", ASCENDING)], unique=True),
        IndexModel([("project_key", ASCENDING), ("timestamp", DESCENDING)]),
        IndexModel([("project_key", ASCENDING), ("route", ASCENDING), ("timestamp", DESCENDING)]),
        IndexModel([("timestamp", ASCENDING)]),
    ],
    CALL_TREES: [
        IndexModel([("project_key", ASCENDING), ("trace_id", ASCENDING)], unique=True),
        IndexModel([("project_key", ASCENDING), ("route", ASCENDING), ("app_version", ASCENDING)]),
        IndexModel([("timestamp", ASCENDING)]),
    ],
    ENDPOINT_METRICS: [
        IndexModel(
            [
                ("project_key", ASCENDING),
                ("resolution", ASCENDING),
                ("bucket_start", ASCENDING),
                ("route", ASCENDING),
                ("method", ASCENDING),
                ("status_class", ASCENDING),
                ("app_version", ASCENDING),
            ],
            unique=True,
        ),
    ],
    METRIC_BATCHES: [
        IndexModel([("project_key", ASCENDING), ("batch_id", ASCENDING)], unique=True),
        IndexModel([("received_at", ASCENDING)]),
    ],
    ANALYSES: [
        IndexModel([("project_key", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("trace_id", ASCENDING), ("status", ASCENDING)]),
    ],
    REPORTS: [
        IndexModel([("project_key", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("created_at", ASCENDING)]),
    ],
    SCHEDULER_STATE: [IndexModel([("kind", ASCENDING), ("name", ASCENDING)], unique=True)],
    RATE_WINDOWS: [IndexModel([("window", ASCENDING)])],
    UNKNOWN_KEYS: [IndexModel([("last_seen", ASCENDING)])],
    JOB_RUNS: [
        IndexModel([("job", ASCENDING), ("fire_time", ASCENDING)]),
        IndexModel([("status", ASCENDING)]),
        IndexModel([("started_at", DESCENDING)]),
    ],
}


def utcnow() -> datetime:
    # The store keeps milliseconds; truncating here keeps round trips exact.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def floor_time(value: datetime, width: timedelta) -> datetime:
    """The start of the ``width``-long bucket holding ``value`` (UTC)."""
    value = as_utc(value)
    seconds = int(width.total_seconds())
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=timezone.utc)


def new_project_key() -> str:
    return "pk_" + secrets.token_urlsafe(24)


def public(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored document as the API and the loaders show it: ``_id`` as ``id``."""
    if document is None:
        return None
    out = {key: value for key, value in document.items() if key != "_id"}
    if "_id" in document:
        out["id"] = str(document["_id"])
    return out


_PROJECT_FLAGS = ("enabled", "auto_analysis")


def _project(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A project as shown, its config flags as booleans (the embedded server
    returns booleans written by ``$set`` as 0/1)."""
    project = public(document)
    config = (project or {}).get("config")
    if isinstance(config, dict):
        project["config"] = {  # type: ignore[index]
            **config,
            **{flag: bool(config[flag]) for flag in _PROJECT_FLAGS if flag in config},
        }
    return project


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
        "application_root": application_root,
        "session": Binary(session) if session else None,
        "created_at": now,
    }
    return lean, tree


class Store:
    """A handle on the pystrument database."""

    def __init__(self, url: str, *, database: str = "pystrument", timeout_ms: int = 2000) -> None:
        self.url = url
        self.client: pymongo.MongoClient = pymongo.MongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 5, 10_000),
        )
        self.db = self.client[database]
        self.projects: Collection = self.db[PROJECTS]
        self.records: Collection = self.db[RECORDS]
        self.call_trees: Collection = self.db[CALL_TREES]
        self.endpoint_metrics: Collection = self.db[ENDPOINT_METRICS]
        self.metric_batches: Collection = self.db[METRIC_BATCHES]
        self.analyses: Collection = self.db[ANALYSES]
        self.reports: Collection = self.db[REPORTS]
        self._indexes_ready = False

    def close(self) -> None:
        self.client.close()

    # -- health and schema -------------------------------------------------

    def ping(self) -> bool:
        try:
            self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    def ensure_indexes(self) -> None:
        """Create every index of every collection; safe to call again."""
        if self._indexes_ready:
            return
        try:
            for name, indexes in INDEXES.items():
                self.db[name].create_indexes(indexes)
        except PyMongoError as exc:
            raise StoreUnavailable(f"cannot create indexes: {exc}") from exc
        self._indexes_ready = True

    # -- projects ----------------------------------------------------------

    def create_project(
        self,
        name: str,
        *,
        framework: str = "other",
        description: str = "",
        base_url: str | None = None,
        sampling_rate: float = 0.3,
        enable_ai_analysis: bool = False,
        alert_threshold: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        now = utcnow()
        document = {
            "project_key": new_project_key(),
            "name": name,
            "description": description,
            "framework": framework,
            "base_url": base_url,
            "status": "active",
            "config": {
                "sampling_rate": sampling_rate,
                "enabled": True,
                "auto_analysis": enable_ai_analysis,
                "alert_threshold": {
                    "response_time": 1.0,
                    "error_rate": 0.05,
                    "memory_usage": 512.0,
                    **(alert_threshold or {}),
                },
            },
            "created_at": now,
            "updated_at": now,
            "last_activity": None,
        }
        try:
            self.projects.insert_one(document)
        except DuplicateKeyError as exc:
            raise ProjectNameExists(f"a project named {name!r} already exists") from exc
        return public(document)  # type: ignore[return-value]

    def get_project(self, project_key: str) -> dict[str, Any]:
        document = self.projects.find_one({"project_key": project_key})
        if document is None:
            raise ProjectNotFound(f"no project with key {_mask(project_key)}")
        return _project(document)  # type: ignore[return-value]

    def find_project(self, project_key: str) -> dict[str, Any] | None:
        return _project(self.projects.find_one({"project_key": project_key}))

    def project_by_name(self, name: str) -> dict[str, Any] | None:
        return _project(self.projects.find_one({"name": name}))

    def list_projects(
        self, *, page: int = 1, size: int = 20, status: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {} if status is None else {"status": status}
        total = self.projects.count_documents(query)
        cursor = (
            self.projects.find(query)
            .sort("created_at", ASCENDING)
            .skip((page - 1) * size)
            .limit(size)
        )
        return [_project(doc) for doc in cursor], total  # type: ignore[misc]

    def update_project(self, project_key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (top-level fields, or dotted ``config.*`` paths)."""
        if not changes:
            return self.get_project(project_key)
        try:
            document = self.projects.find_one_and_update(
                {"project_key": project_key},
                {"$set": dict(changes), "$currentDate": {"updated_at": True}},
                return_document=pymongo.ReturnDocument.AFTER,
            )
        except DuplicateKeyError as exc:
            raise ProjectNameExists(
                f"a project named {changes.get('name')!r} already exists"
            ) from exc
        if document is None:
            raise ProjectNotFound(f"no project with key {_mask(project_key)}")
        return _project(document)  # type: ignore[return-value]

    def delete_project(self, project_key: str) -> dict[str, int]:
        """Delete a project and everything stored for it."""
        result = self.projects.delete_one({"project_key": project_key})
        if result.deleted_count == 0:
            raise ProjectNotFound(f"no project with key {_mask(project_key)}")
        removed = {"projects": 1}
        for collection in (
            self.records,
            self.call_trees,
            self.endpoint_metrics,
            self.metric_batches,
            self.analyses,
            self.reports,
        ):
            removed[collection.name] = collection.delete_many(
                {"project_key": project_key}
            ).deleted_count
        return removed

    def touch_project(self, project_key: str) -> None:
        """Mark that data was received for the project just now."""
        self.projects.update_one(
            {"project_key": project_key}, {"$currentDate": {"last_activity": True}}
        )

    # -- records and call trees ---------------------------------------------

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
        _insert_ignoring_duplicates(self.call_trees, trees)
        try:
            inserted = _insert_ignoring_duplicates(self.records, [lean for lean, _ in pairs])
        except Exception:
            # Leave no tree without its record: remove the trees this call
            # wrote (their ``_id`` was set by the insert) for records not stored.
            self._drop_orphan_trees(project_key, trees)
            raise
        return inserted, len(pairs) - inserted

    def _drop_orphan_trees(self, project_key: str, trees: Sequence[Mapping[str, Any]]) -> None:
        stored = {
            doc["trace_id"]
            for doc in self.records.find(
                {"project_key": project_key, "trace_id": {"$in": [t["trace_id"] for t in trees]}},
                {"trace_id": 1},
            )
        }
        orphans = [
            tree["_id"] for tree in trees if "_id" in tree and tree["trace_id"] not in stored
        ]
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
        """Records matching the filters, newest first by default, and their total count."""
        query = record_query(project_key, **filters)
        field, direction = _sort_spec(sort)
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
        _add_range(query, "timestamp", since, until)
        cursor = self.call_trees.find(query, {"session": 0})
        if limit is not None:
            cursor = cursor.sort("timestamp", DESCENDING).limit(limit)
        yield from cursor

    # -- endpoint metrics ---------------------------------------------------

    def claim_metric_batch(self, project_key: str, batch_id: str) -> bool:
        """Record a metric batch as received; False when it was already."""
        try:
            self.metric_batches.insert_one(
                {"project_key": project_key, "batch_id": batch_id, "received_at": utcnow()}
            )
            return True
        except DuplicateKeyError:
            return False

    def add_metrics(self, project_key: str, points: Iterable[Mapping[str, Any]]) -> int:
        """Fold metric points into the documents of every resolution (1 min, 10 min, 1 h).

        Missing documents are first inserted empty (duplicates ignored: the
        unique index finds them), then every point is added with ``$inc``.
        Not one upsert: on the embedded server an inserting upsert scans the
        whole collection, and ``$inc`` on a dotted path inside one writes a
        literal dotted key.
        """
        keys: dict[tuple[Any, ...], dict[str, Any]] = {}
        updates: list[UpdateOne] = []
        count = 0
        for point in points:
            count += 1
            for resolution, width in RESOLUTIONS.items():
                key = {
                    "project_key": project_key,
                    "resolution": resolution,
                    "bucket_start": floor_time(point["interval_start"], width),
                    "route": point["route"],
                    "method": point["method"],
                    "status_class": point["status_class"],
                    "app_version": point.get("app_version") or "",
                }
                keys.setdefault(tuple(key.values()), key)
                increments: dict[str, Any] = {
                    "count": int(point["count"]),
                    "errors": int(point["errors"]),
                    "duration_sum": float(point["duration_sum"]),
                }
                for bucket, bucket_count in point["histogram"].items():
                    increments[f"histogram.{int(bucket)}"] = int(bucket_count)
                # Keys arrive escaped (collector.schemas.diagnostics.escape_key): no '.'.
                for kind, kind_count in (point.get("exceptions") or {}).items():
                    increments[f"exceptions.{kind}"] = int(kind_count)
                updates.append(
                    UpdateOne(
                        key,
                        {
                            "$inc": increments,
                            "$min": {"duration_min": float(point["duration_min"])},
                            "$max": {"duration_max": float(point["duration_max"])},
                        },
                    )
                )
        if updates:
            empty = {"count": 0, "errors": 0, "duration_sum": 0.0, "histogram": {}}
            _insert_ignoring_duplicates(
                self.endpoint_metrics, [{**key, **empty} for key in keys.values()]
            )
            self.endpoint_metrics.bulk_write(updates, ordered=False)
        return count

    def metric_docs(
        self,
        project_key: str,
        *,
        since: datetime,
        until: datetime,
        resolution: str = "1m",
        route: str | None = None,
        method: str | None = None,
        app_version: str | None = None,
    ) -> list[dict[str, Any]]:
        """The metric documents of one resolution whose bucket starts in [since, until)."""
        if resolution not in RESOLUTIONS:
            raise ParameterError(f"resolution must be one of {sorted(RESOLUTIONS)}")
        query: dict[str, Any] = {
            "project_key": project_key,
            "resolution": resolution,
            "bucket_start": {"$gte": as_utc(since), "$lt": as_utc(until)},
        }
        for field, value in (("route", route), ("method", method), ("app_version", app_version)):
            if value is not None:
                query[field] = value
        return list(self.endpoint_metrics.find(query, {"_id": 0, "project_key": 0}))

    def app_versions(self, project_key: str) -> list[str]:
        """Every app version that sent metrics for the project."""
        versions = self.endpoint_metrics.distinct(
            "app_version", {"project_key": project_key, "resolution": "1h"}
        )
        return sorted(str(version) for version in versions)

    # -- shared rate limit ---------------------------------------------------

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
                return_document=pymongo.ReturnDocument.AFTER,
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

    # -- diagnosis (pystrument doctor) and heartbeats ------------------------

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
            {"project_key": project_key},
            {"$set": {"sdk_report": {**report, "received": time.time()}}},
        )

    def last_record_time(self, project_key: str) -> datetime | None:
        """The timestamp of the project's newest stored record."""
        document = self.records.find_one(
            {"project_key": project_key}, {"timestamp": 1}, sort=[("timestamp", DESCENDING)]
        )
        return as_utc(document["timestamp"]) if document else None

    def last_metric_time(self, project_key: str) -> datetime | None:
        """The start of the project's newest hourly metric document."""
        document = self.endpoint_metrics.find_one(
            {"project_key": project_key, "resolution": "1h"},
            {"bucket_start": 1},
            sort=[("bucket_start", DESCENDING)],
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
            "pending": self.analyses.count_documents({"status": "pending"}),
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
            "records_since": self.records.count_documents({"timestamp": {"$gte": as_utc(since)}}),
            "records": self.records.estimated_document_count(),
            "record_bytes": data,
            "storage_bytes": int(stats.get("storageSize") or stats.get("dataSize") or 0),
        }

    # -- retention ----------------------------------------------------------

    def delete_older_than(self, cutoff: datetime) -> dict[str, int]:
        """Remove records, trees, metric documents and analyses older than ``cutoff``.

        Minute and 10-minute metric documents go sooner, after
        :data:`METRIC_RETENTION` (when that is shorter).
        """
        cutoff = as_utc(cutoff)
        now = utcnow()
        metrics = self.endpoint_metrics.delete_many({"bucket_start": {"$lt": cutoff}}).deleted_count
        for resolution, keep in METRIC_RETENTION.items():
            if now - keep > cutoff:
                metrics += self.endpoint_metrics.delete_many(
                    {"resolution": resolution, "bucket_start": {"$lt": now - keep}}
                ).deleted_count
        return {
            RECORDS: self.records.delete_many({"timestamp": {"$lt": cutoff}}).deleted_count,
            CALL_TREES: self.call_trees.delete_many({"timestamp": {"$lt": cutoff}}).deleted_count,
            ENDPOINT_METRICS: metrics,
            METRIC_BATCHES: self.metric_batches.delete_many(
                {"received_at": {"$lt": cutoff}}
            ).deleted_count,
            ANALYSES: self.analyses.delete_many({"created_at": {"$lt": cutoff}}).deleted_count,
        }


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
    _add_range(query, "timestamp", filters.get("since"), filters.get("until"))
    min_duration = filters.get("min_duration")
    if min_duration is not None:
        query["total_duration"] = {"$gte": min_duration}
    return query


_SORTABLE = {"timestamp", "total_duration", "status_code", "route", "method", "app_version", "path"}


def _sort_spec(sort: str) -> tuple[str, int]:
    field = sort.lstrip("+-")
    if field not in _SORTABLE:
        raise ParameterError(f"cannot sort by {field!r}; choose one of {sorted(_SORTABLE)}")
    return field, DESCENDING if sort.startswith("-") else ASCENDING


def _add_range(
    query: dict[str, Any], field: str, since: datetime | None, until: datetime | None
) -> None:
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = as_utc(since)
    if until is not None:
        bounds["$lt"] = as_utc(until)
    if bounds:
        query[field] = bounds


def _insert_ignoring_duplicates(collection: Collection, documents: list[dict[str, Any]]) -> int:
    """insert_many(ordered=False) that treats duplicate keys as already stored."""
    if not documents:
        return 0
    try:
        return len(collection.insert_many(documents, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != 11000 for error in errors):
            raise
        return int(exc.details.get("nInserted", 0))


def _mask(secret: str) -> str:
    return secret[:6] + "…" if len(secret) > 6 else "…"


def compress_session(session_json: str | bytes) -> bytes:
    """Compress a pyinstrument session's JSON the way ``call_trees.session`` stores it."""
    data = session_json.encode() if isinstance(session_json, str) else session_json
    return zlib.compress(data, 6)


_stores: dict[tuple[str, str], Store] = {}


def resolve_url(settings: Settings | None = None) -> str:
    """The configured MongoDB URL, or the embedded server's (started when needed)."""
    settings = settings or get_settings()
    if settings.mongodb_url:
        return settings.mongodb_url
    from pystrument_lab.embedded import EmbeddedServer

    return EmbeddedServer(settings.home, port=settings.store_port).ensure_running()


def connect(
    url: str | None = None, *, database: str | None = None, settings: Settings | None = None
) -> Store:
    """A store handle (cached per URL and database) with its indexes in place."""
    settings = settings or get_settings()
    url = url or resolve_url(settings)
    database = database or settings.database
    key = (url, database)
    store = _stores.get(key)
    if store is None:
        store = Store(url, database=database, timeout_ms=settings.store_timeout_ms)
        _stores[key] = store
    store.ensure_indexes()
    return store
