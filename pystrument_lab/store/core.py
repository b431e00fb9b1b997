"""The :class:`Store` handle: connection, schema set-up, retention, and ``connect``."""

from __future__ import annotations

from datetime import datetime

import pymongo
from pymongo.errors import PyMongoError

from pystrument_lab.errors import StoreUnavailable
from pystrument_lab.settings import Settings, get_settings
from pystrument_lab.store.analyses import AnalysisQueries
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
    PROJECTS,
    RECORDS,
    REPORTS,
    SCHEDULER_STATE,
    as_utc,
    utcnow,
)


class Store(
    ProjectQueries,
    RecordQueries,
    MetricQueries,
    AnalysisQueries,
    ReportQueries,
    SchedulerQueries,
):
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
        self.projects = self.db[PROJECTS]
        self.records = self.db[RECORDS]
        self.call_trees = self.db[CALL_TREES]
        self.endpoint_metrics = self.db[ENDPOINT_METRICS]
        self.metric_batches = self.db[METRIC_BATCHES]
        self.analyses = self.db[ANALYSES]
        self.reports = self.db[REPORTS]
        self.scheduler_state = self.db[SCHEDULER_STATE]
        self.job_runs = self.db[JOB_RUNS]
        self._indexes_ready = False

    @property
    def database_name(self) -> str:
        return self.db.name

    def close(self) -> None:
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
            for name, indexes in INDEXES.items():
                self.db[name].create_indexes(indexes)
        except PyMongoError as exc:
            raise StoreUnavailable(f"cannot create indexes: {exc}") from exc
        self._indexes_ready = True

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


def ping_url(url: str, timeout_ms: int = 1500) -> bool:
    """Whether a MongoDB-wire server answers at ``url`` (a short-lived client)."""
    client: pymongo.MongoClient = pymongo.MongoClient(
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
        store = Store(url, database=database, timeout_ms=settings.store_timeout_ms)
        _stores[key] = store
    store.ensure_indexes()
    return store
