"""Collections, indexes and the small helpers every store module shares.

Known gaps of the embedded server (nx-27017 0.8.1 on neosqlite) that shape
the whole package; the ones that concern one query are documented beside it:

- index keys lose their direction (harmless for our filters);
- ``$set`` (and ``$max``/``$min``) of a top-level date stores a string, so a
  time that changes after insert is set with ``$currentDate`` ("now",
  server-side);
- date comparisons in filters ignore milliseconds (a bound matches the whole
  second it falls in) and are never served from an index: the server wraps
  the field in ``datetime(...)``, which no index expression matches. So every
  time a hot query filters or pages on is also stored as float epoch seconds
  (``ts`` of records and trees, ``bucket_epoch`` of metric documents,
  ``received_epoch`` of metric batches) and queried as a number;
- a plain equality ``{field: value}`` on any field but ``_id`` is translated
  with an "or an array containing it" arm, which no index serves either: a
  compound filter is then a full ``SCAN`` of the collection (every project's
  data). ``{field: {"$eq": value}}`` is a plain ``=`` and uses the index, so
  hot queries spell equality with :func:`eq`. ``$in`` on a field other than
  ``_id`` is scanned as well; ``_id`` equality and ``_id`` ``$in`` are served
  by the ``_id`` column's unique index, a range on ``_id`` is not;
- every aggregation first counts the whole collection: neosqlite's
  aggregation cursor estimates its result size from ``SELECT COUNT(1)`` of
  the table before it runs the pipeline (0.8 ms at 20k documents, 6-8 ms
  at 70k on a busy 2-core machine: the ~40 ms more every listing paid at
  600k records), whatever the pipeline reads. ``count_documents`` is
  an aggregation, and reads and decodes every match besides (390 ms at 40k
  documents), even with ``limit``; ``estimated_document_count`` is the same
  full ``COUNT``. A ``find`` decodes each whole document it returns, even
  when it projects only ``_id``, but not the ones it ``skip``s (SQLite's
  ``OFFSET`` steps over the index). So hot paths never aggregate and count
  with :func:`bounded_count`;
- statistical aggregation is unreliable (DESIGN §3): queries stay plain
  filters, projections, sorts on top-level fields and upserts; anything
  statistical is computed in Python from pre-aggregated documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

__all__ = [
    "ANALYSES",
    "CALL_TREES",
    "ENDPOINT_METRICS",
    "FRAMEWORKS",
    "INDEXES",
    "JOB_RUNS",
    "METRIC_BATCHES",
    "METRIC_RETENTION",
    "PROJECTS",
    "PROJECT_METRICS",
    "RATE_WINDOWS",
    "UNKNOWN_KEYS",
    "UNKNOWN_KEY_LIMIT",
    "PROJECT_STATUSES",
    "RECORDS",
    "RECORD_QUERY_FIELDS",
    "REPORTS",
    "RESOLUTIONS",
    "SCHEDULER_STATE",
    "DuplicateKeyError",
    "StoreError",
    "as_utc",
    "bounded_count",
    "epoch",
    "eq",
    "floor_time",
    "public",
    "utcnow",
]

#: Every error the store's driver raises (callers catch this, never pymongo's).
StoreError = PyMongoError

PROJECTS = "projects"
RECORDS = "performance_records"
CALL_TREES = "call_trees"
ENDPOINT_METRICS = "endpoint_metrics"
#: The same metrics rolled up over every route of a project, one document per
#: (project, resolution, bucket, app version): what a project-wide figure reads,
#: however many routes the project has.
PROJECT_METRICS = "project_metrics"
METRIC_BATCHES = "metric_batches"
ANALYSES = "ai_analysis_results"
REPORTS = "reports"
SCHEDULER_STATE = "scheduler_state"
JOB_RUNS = "job_runs"
STORE_META = "store_meta"
RATE_WINDOWS = "rate_windows"
UNKNOWN_KEYS = "unknown_keys"

#: How many distinct unknown project keys ``Store.note_unknown_key`` keeps.
UNKNOWN_KEY_LIMIT = 1000

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
    # Every filter of the records listing leads with project_key and pages on
    # ts (or total_duration); the server picks the index with the most
    # equality fields, so each single filter is served by its own index.
    # A record's identity is its record_key (trace id and span id): requests
    # of one distributed trace share the trace id (records.record_key). The
    # single-field indexes serve lookups with or without a project (a trace
    # id or record key is selective alone).
    RECORDS: [
        IndexModel([("project_key", ASCENDING), ("record_key", ASCENDING)], unique=True),
        IndexModel([("record_key", ASCENDING)]),
        IndexModel([("trace_id", ASCENDING)]),
        # total_duration after ts: a newest-first page with a minimum duration
        # walks this index and tests the duration in it, reading only the
        # documents it returns (listing._find_sorted; 19 ms -> 1 ms for a
        # window of 4,800 records at 100k). It serves every (project_key, ts)
        # query too, and replaces that index (SUPERSEDED_INDEXES).
        IndexModel(
            [("project_key", ASCENDING), ("ts", DESCENDING), ("total_duration", DESCENDING)]
        ),
        IndexModel([("project_key", ASCENDING), ("route", ASCENDING), ("ts", DESCENDING)]),
        IndexModel([("project_key", ASCENDING), ("path", ASCENDING), ("ts", DESCENDING)]),
        IndexModel([("project_key", ASCENDING), ("method", ASCENDING), ("ts", DESCENDING)]),
        IndexModel([("project_key", ASCENDING), ("status_code", ASCENDING), ("ts", DESCENDING)]),
        IndexModel([("project_key", ASCENDING), ("app_version", ASCENDING), ("ts", DESCENDING)]),
        IndexModel([("project_key", ASCENDING), ("total_duration", DESCENDING)]),
        IndexModel(
            [("project_key", ASCENDING), ("route", ASCENDING), ("total_duration", DESCENDING)]
        ),
        IndexModel([("ts", ASCENDING)]),
        # the trace page's other records with the same exception (store.exceptions)
        IndexModel([("project_key", ASCENDING), ("error.type", ASCENDING), ("ts", DESCENDING)]),
    ],
    CALL_TREES: [
        IndexModel([("project_key", ASCENDING), ("record_key", ASCENDING)], unique=True),
        IndexModel([("project_key", ASCENDING), ("route", ASCENDING), ("ts", DESCENDING)]),
        IndexModel(
            [
                ("project_key", ASCENDING),
                ("route", ASCENDING),
                ("app_version", ASCENDING),
                ("ts", DESCENDING),
            ]
        ),
        IndexModel([("ts", ASCENDING)]),
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
        IndexModel(
            [("project_key", ASCENDING), ("resolution", ASCENDING), ("bucket_epoch", ASCENDING)]
        ),
        IndexModel([("resolution", ASCENDING), ("bucket_epoch", ASCENDING)]),
        IndexModel([("bucket_epoch", ASCENDING)]),
    ],
    PROJECT_METRICS: [
        IndexModel(
            [("project_key", ASCENDING), ("resolution", ASCENDING), ("bucket_epoch", ASCENDING)]
        ),
        IndexModel([("resolution", ASCENDING), ("bucket_epoch", ASCENDING)]),
        IndexModel([("bucket_epoch", ASCENDING)]),
    ],
    METRIC_BATCHES: [
        IndexModel([("project_key", ASCENDING), ("batch_id", ASCENDING)], unique=True),
        IndexModel([("received_epoch", ASCENDING)]),
    ],
    ANALYSES: [
        IndexModel([("project_key", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("trace_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("record_key", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("priority", DESCENDING), ("created_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("completed_epoch", ASCENDING)]),
        IndexModel([("task_id", ASCENDING)]),
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


#: Indexes an earlier version created that one of :data:`INDEXES` now serves (by their
#: fields): dropped when a store opens, so ingest does not keep writing them.
SUPERSEDED_INDEXES: dict[str, list[list[str]]] = {RECORDS: [["project_key", "ts"]]}


#: What the driver returns for a stored document (no class mapping).
Document = dict[str, Any]


class Collections:
    """The collection handles every store module works on (set by ``Store``)."""

    db: Database[Document]
    projects: Collection[Document]
    records: Collection[Document]
    call_trees: Collection[Document]
    endpoint_metrics: Collection[Document]
    project_metrics: Collection[Document]
    metric_batches: Collection[Document]
    analyses: Collection[Document]
    reports: Collection[Document]
    scheduler_state: Collection[Document]
    job_runs: Collection[Document]


def eq(value: Any) -> dict[str, Any]:
    """Equality as the embedded server serves it from an index (see the module doc)."""
    return {"$eq": value}


def epoch(value: datetime) -> float:
    """Float epoch seconds of a time: the form hot queries compare (see the module doc)."""
    return as_utc(value).timestamp()


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


def bounded_count(collection: Collection[Document], query: Mapping[str, Any], bound: int) -> int:
    """How many documents match ``query``, counting no further than ``bound``.

    Never an aggregation (each one counts the whole collection first on the
    embedded server, see the module doc): a ``find`` skipping ``bound - 1``
    matches asks whether a ``bound``-th exists (one document decoded, the
    skipped ones only stepped over in the index); only when none does are the
    fewer matches counted, by the ``count`` command (one ``SELECT COUNT``
    over the filter's index). Both cost at most ``bound`` index entries,
    whatever the collection holds.
    """
    if bound <= 0:
        return 0
    beyond = collection.find(dict(query), {"_id": 1}).skip(bound - 1).limit(1)
    if list(beyond):
        return bound
    answer = collection.database.command("count", collection.name, query=dict(query))
    return min(int(answer.get("n", 0)), bound)


def public(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored document as the API and the loaders show it: ``_id`` as ``id``."""
    if document is None:
        return None
    out = {key: value for key, value in document.items() if key != "_id"}
    if "_id" in document:
        out["id"] = str(document["_id"])
    return out


def add_range(
    query: dict[str, Any], field: str, since: datetime | None, until: datetime | None
) -> None:
    """Add ``since <= field < until`` to ``query`` (either bound optional)."""
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = as_utc(since)
    if until is not None:
        bounds["$lt"] = as_utc(until)
    if bounds:
        query[field] = bounds


def insert_ignoring_duplicates(
    collection: Collection[Document], documents: list[dict[str, Any]]
) -> int:
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


def mask(secret: str) -> str:
    return secret[:6] + "…" if len(secret) > 6 else "…"
