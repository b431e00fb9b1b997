"""The :class:`Store` handle: connection, schema set-up, retention, and ``connect``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pymongo
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from pystrument_lab.errors import StoreUnavailable
from pystrument_lab.settings import Settings, get_settings
from pystrument_lab.store.analyses import AnalysisQueries
from pystrument_lab.store.diagnostics import DiagnosticQueries
from pystrument_lab.store.exceptions import ExceptionQueries
from pystrument_lab.store.identity import IdentityQueries
from pystrument_lab.store.listing import ListingQueries
from pystrument_lab.store.metrics import MetricQueries
from pystrument_lab.store.projects import ProjectQueries
from pystrument_lab.store.records import RecordQueries
from pystrument_lab.store.reports import ReportQueries
from pystrument_lab.store.scheduler import SchedulerQueries
from pystrument_lab.store.schema import (
    ANALYSES,
    CALL_TREES,
    ENDPOINT_METRICS,
    INDEXES,
    JOB_RUNS,
    METRIC_BATCHES,
    METRIC_RETENTION,
    PROJECT_METRICS,
    PROJECTS,
    RECORDS,
    REPORTS,
    SCHEDULER_STATE,
    STORE_META,
    SUPERSEDED_INDEXES,
    Document,
    as_utc,
    epoch,
    eq,
    utcnow,
)

#: A workbench process's deadline per store call, in collector deadlines.
LAB_DEADLINE_FACTOR = 6
#: Documents retention deletes per call, and the least pause (seconds) between calls.
DELETE_CHUNK = 500
DELETE_PAUSE = 0.02


class Store(
    ProjectQueries,
    RecordQueries,
    IdentityQueries,
    ListingQueries,
    MetricQueries,
    AnalysisQueries,
    ReportQueries,
    SchedulerQueries,
    DiagnosticQueries,
    ExceptionQueries,
):
    """A handle on the pystrument database."""

    def __init__(
        self,
        url: str,
        *,
        database: str = "pystrument",
        timeout_ms: int = 2000,
        deadline_ms: int | None = None,
        max_pool_size: int = 100,
    ) -> None:
        """``deadline_ms`` bounds every call: the wait for the server's answer
        (``socketTimeoutMS``) and for a free connection of this handle's pool
        (``waitQueueTimeoutMS``); ``max_pool_size`` bounds the connections it
        holds at once. Not pymongo's ``timeoutMS``: under it a write retries
        until the deadline, so an ingest call would hang for the whole
        deadline while the store is down instead of failing after
        ``timeout_ms`` (server selection)."""
        self.url = url
        self.timeout_ms = timeout_ms
        self.deadline_ms = deadline_ms or max(timeout_ms * 5, 10_000)
        self.client: pymongo.MongoClient[Document] = pymongo.MongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=self.deadline_ms,
            waitQueueTimeoutMS=self.deadline_ms,
            maxPoolSize=max_pool_size,
        )
        self._reader: Store | None = None
        self.db = self.client[database]
        self.projects = self.db[PROJECTS]
        self.records = self.db[RECORDS]
        self.call_trees = self.db[CALL_TREES]
        self.endpoint_metrics = self.db[ENDPOINT_METRICS]
        self.project_metrics = self.db[PROJECT_METRICS]
        self.metric_batches = self.db[METRIC_BATCHES]
        self.analyses = self.db[ANALYSES]
        self.reports = self.db[REPORTS]
        self.scheduler_state = self.db[SCHEDULER_STATE]
        self.job_runs = self.db[JOB_RUNS]
        self._indexes_ready = False

    @property
    def database_name(self) -> str:
        return self.db.name

    def reader(self, pool_size: int) -> Store:
        """A handle on the same database with a pool of its own (``pool_size``
        connections): the collector's reads go through it, so a slow read waits
        for a read connection and never for one that ingest needs."""
        if self._reader is None:
            self._reader = Store(
                self.url,
                database=self.db.name,
                timeout_ms=self.timeout_ms,
                deadline_ms=self.deadline_ms,
                max_pool_size=pool_size,
            )
            self._reader._indexes_ready = True
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self.client.close()

    # -- health and schema -------------------------------------------------

    def ping(self) -> bool:
        try:
            self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    def check(self) -> None:
        """Raise the driver's error (a :data:`StoreError`) when the store does not answer."""
        self.db.command("ping")

    def ensure_indexes(self) -> None:
        """Create every index of every collection; safe to call again."""
        if self._indexes_ready:
            return
        try:
            self.migrate_record_keys()  # before the unique record_key indexes exist
            for name, indexes in INDEXES.items():
                self.db[name].create_indexes(indexes)
            self.drop_superseded_indexes()
            self.backfill_epochs()
            self.build_project_metrics()
        except PyMongoError as exc:
            raise StoreUnavailable(f"cannot create indexes: {exc}") from exc
        self._indexes_ready = True

    def drop_superseded_indexes(self) -> None:
        """Drop the indexes of :data:`SUPERSEDED_INDEXES` where they exist."""
        for name, superseded in SUPERSEDED_INDEXES.items():
            collection = self.db[name]
            for index, info in collection.index_information().items():
                # The embedded server names indexes its own way: match on the fields.
                if [field for field, _ in info["key"]] in superseded:
                    collection.drop_index(index)

    # -- retention ----------------------------------------------------------

    def delete_older_than(self, cutoff: datetime) -> dict[str, int]:
        """Remove records, trees, metric documents and analyses older than ``cutoff``.

        Minute and 10-minute metric documents go sooner, after
        :data:`METRIC_RETENTION` (when that is shorter). Times are compared as
        epoch seconds, which the embedded server serves from an index (dates
        it scans for), oldest first in chunks of at most :data:`DELETE_CHUNK`
        documents with a pause between them (:meth:`_delete_chunked`), so
        ingest meanwhile waits for one small chunk at most.
        """
        cutoff = as_utc(cutoff)
        now = utcnow()
        removed: dict[str, int] = {}
        for collection in (self.endpoint_metrics, self.project_metrics):
            metrics = self._delete_chunked(collection, "bucket_epoch", epoch(cutoff))
            for resolution, keep in METRIC_RETENTION.items():
                if now - keep > cutoff:
                    metrics += self._delete_chunked(
                        collection,
                        "bucket_epoch",
                        epoch(now - keep),
                        {"resolution": eq(resolution)},
                    )
            removed[collection.name] = metrics
        before = epoch(cutoff)
        return {
            RECORDS: self._delete_chunked(self.records, "ts", before),
            CALL_TREES: self._delete_chunked(self.call_trees, "ts", before),
            **removed,
            METRIC_BATCHES: self._delete_chunked(self.metric_batches, "received_epoch", before),
            # few documents (analyses of slow requests): a scan here is cheap
            ANALYSES: self.analyses.delete_many({"created_at": {"$lt": cutoff}}).deleted_count,
        }

    def _delete_chunked(
        self,
        collection: Collection[Document],
        field: str,
        before: float,
        match: Mapping[str, Any] | None = None,
    ) -> int:
        """Delete the documents of ``match`` whose ``field`` (epoch seconds) is below
        ``before``, oldest first, :data:`DELETE_CHUNK` at a time.

        Each chunk is one ``delete_many`` by a range of the field's index: the
        field's value of the ``DELETE_CHUNK``-th oldest document (a ``find``
        that skips the others, which the embedded server steps over in the
        index without reading them) bounds what the chunk removes. Not ids
        read first: the server decodes each whole document to return its
        ``_id`` (2,000 ids held the store for about a second), and every
        command on a database waits for the one running there. Between
        chunks the job sleeps as long as the chunk took (at least
        :data:`DELETE_PAUSE` seconds), so ingest gets at least half the store.
        """
        scope = dict(match or {})
        removed = 0
        while True:
            started = time.monotonic()
            older: dict[str, Any] = {**scope, field: {"$lt": before}}
            edge = list(
                collection.find(older, {field: 1})
                .sort(field, ASCENDING)
                .skip(DELETE_CHUNK - 1)
                .limit(1)
            )
            bound = edge[0].get(field) if edge else None
            if not isinstance(bound, (int, float)):
                # fewer than DELETE_CHUNK left: the last chunk
                return removed + collection.delete_many(older).deleted_count
            deleted = collection.delete_many({**scope, field: {"$lt": bound}}).deleted_count
            if deleted == 0:
                # the oldest DELETE_CHUNK documents share one value: take that value
                deleted = collection.delete_many({**scope, field: {"$lte": bound}}).deleted_count
            removed += deleted
            time.sleep(max(DELETE_PAUSE, time.monotonic() - started))

    def backfill_epochs(self) -> None:
        """Give documents stored before the epoch fields existed their ``ts`` /
        ``bucket_epoch`` / ``received_epoch`` (once per database, marked in
        ``store_meta``)."""
        meta = self.db[STORE_META]
        if meta.find_one({"_id": "epoch_fields"}) is not None:
            return
        for collection, source, target in (
            (self.records, "timestamp", "ts"),
            (self.call_trees, "timestamp", "ts"),
            (self.endpoint_metrics, "bucket_start", "bucket_epoch"),
            (self.metric_batches, "received_at", "received_epoch"),
        ):
            for doc in collection.find({target: {"$exists": False}}, {source: 1}):
                value = doc.get(source)
                if isinstance(value, datetime):
                    collection.update_one({"_id": doc["_id"]}, {"$set": {target: epoch(value)}})
        meta.update_one({"_id": "epoch_fields"}, {"$set": {"done": True}}, upsert=True)


def ping_url(url: str, timeout_ms: int = 1500) -> bool:
    """Whether a MongoDB-wire server answers at ``url`` (a short-lived client)."""
    client: pymongo.MongoClient[Document] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


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
        # Notebooks, workers and the dashboard read more at once than one
        # API call: their deadline is a few times the collector's.
        store = Store(
            url,
            database=database,
            timeout_ms=settings.store_timeout_ms,
            deadline_ms=settings.store_deadline_ms * LAB_DEADLINE_FACTOR,
        )
        _stores[key] = store
    store.ensure_indexes()
    return store
