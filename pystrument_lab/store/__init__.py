"""The one package that knows MongoDB: collections, indexes and every query.

The collector, the workbench, the dashboard, the workers, the scheduler and
the reports all go through :class:`Store`; nothing outside this package
imports pymongo or bson (a test checks it). One module per kind of data:

- :mod:`.schema` — collection names, indexes, shared helpers and the
  embedded server's general gaps;
- :mod:`.projects`, :mod:`.records` (records and call trees),
  :mod:`.identity` (a record's key, lookups by key or trace id),
  :mod:`.listing` (the records listing's pages and bounded count),
  :mod:`.metrics`, :mod:`.analyses`, :mod:`.reports`, :mod:`.scheduler`
  (scheduler state and job runs) — the queries, each embedded-server quirk
  documented beside the query that needs it;
- :mod:`.core` — the :class:`Store` handle, retention and :func:`connect`.
"""

from __future__ import annotations

from pystrument_lab.store.core import Store, connect, ping_url, resolve_url
from pystrument_lab.store.identity import record_key
from pystrument_lab.store.projects import new_project_key
from pystrument_lab.store.records import (
    RecordFilters,
    compress_session,
    record_query,
    split_record,
    unstorable_reason,
)
from pystrument_lab.store.schema import (
    ANALYSES,
    CALL_TREES,
    ENDPOINT_METRICS,
    FRAMEWORKS,
    INDEXES,
    JOB_RUNS,
    METRIC_BATCHES,
    METRIC_RETENTION,
    PROJECT_METRICS,
    PROJECT_STATUSES,
    PROJECTS,
    RATE_WINDOWS,
    RECORD_QUERY_FIELDS,
    RECORDS,
    REPORTS,
    RESOLUTIONS,
    SCHEDULER_STATE,
    UNKNOWN_KEY_LIMIT,
    UNKNOWN_KEYS,
    DuplicateKeyError,
    StoreError,
    as_utc,
    floor_time,
    public,
    utcnow,
)

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
    "PROJECT_STATUSES",
    "RATE_WINDOWS",
    "RECORDS",
    "RECORD_QUERY_FIELDS",
    "REPORTS",
    "RESOLUTIONS",
    "SCHEDULER_STATE",
    "UNKNOWN_KEYS",
    "UNKNOWN_KEY_LIMIT",
    "DuplicateKeyError",
    "RecordFilters",
    "Store",
    "StoreError",
    "as_utc",
    "compress_session",
    "connect",
    "floor_time",
    "new_project_key",
    "ping_url",
    "public",
    "record_key",
    "record_query",
    "resolve_url",
    "split_record",
    "unstorable_reason",
    "utcnow",
]
