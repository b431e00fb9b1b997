"""Pre-aggregated endpoint metrics (``endpoint_metrics``) and metric batch ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from pystrument_lab.errors import ParameterError
from pystrument_lab.store.schema import (
    PROJECT_METRICS,
    RESOLUTIONS,
    STORE_META,
    Collections,
    Document,
    as_utc,
    epoch,
    eq,
    floor_time,
    insert_ignoring_duplicates,
    utcnow,
)

#: The fields that identify a metric document, in ``_id`` order.
KEY_FIELDS = ("resolution", "bucket_epoch", "route", "method", "status_class", "app_version")


def metric_id(project_key: str, key: Mapping[str, Any]) -> str:
    """A metric document's ``_id``: its key, so a write finds it through the ``_id`` index."""
    parts = [project_key, *(str(key[field]) for field in KEY_FIELDS)]
    return "\x1f".join(parts)


class MetricQueries(Collections):
    """Metric documents: one per (project, resolution, bucket, route, method, status class, version)."""

    def claim_metric_batch(self, project_key: str, batch_id: str) -> bool:
        """Record a metric batch as received; False when it was already."""
        now = utcnow()
        try:
            self.metric_batches.insert_one(
                {
                    "project_key": project_key,
                    "batch_id": batch_id,
                    "received_at": now,
                    "received_epoch": epoch(now),
                }
            )
            return True
        except DuplicateKeyError:
            return False

    def add_metrics(self, project_key: str, points: Iterable[Mapping[str, Any]]) -> int:
        """Fold metric points into the documents of every resolution (1 min, 10 min, 1 h),
        per endpoint (``endpoint_metrics``) and over the whole project (``project_metrics``).

        Points are first folded in Python, so each document is written once
        per call. Missing documents are inserted empty (duplicates ignored),
        then each gets one ``$inc`` addressed by its ``_id`` (:func:`metric_id`):
        the embedded server finds a document by ``_id`` through an index but
        scans the collection for a compound key, and an inserting upsert
        scans it too and writes ``$inc`` on a dotted path as a literal dotted
        key. Documents written before ids were keys (an ObjectId ``_id``) are
        updated by their key with ``$eq`` equalities, which the unique index
        serves.
        """
        endpoints: dict[str, dict[str, Any]] = {}
        project: dict[str, dict[str, Any]] = {}
        count = 0
        for point in points:
            count += 1
            version = point.get("app_version") or ""
            for resolution, width in RESOLUTIONS.items():
                start = floor_time(point["interval_start"], width)
                key = {
                    "resolution": resolution,
                    "bucket_epoch": epoch(start),
                    "route": point["route"],
                    "method": point["method"],
                    "status_class": point["status_class"],
                    "app_version": version,
                }
                _fold(endpoints, project_key, key, start, point)
                _fold(project, project_key, rollup_key(resolution, start, version), start, point)
        if not endpoints:
            return count
        if self._write_folded(self.endpoint_metrics, endpoints) < len(endpoints):
            self._update_keyed_documents(endpoints)
        self._write_folded(self.project_metrics, project)
        return count

    @staticmethod
    def _write_folded(
        collection: Collection[Document], folded: Mapping[str, Mapping[str, Any]]
    ) -> int:
        """Insert the missing documents of ``folded`` empty, then ``$inc`` each by ``_id``;
        how many matched an ``_id``."""
        empty = {"count": 0, "errors": 0, "duration_sum": 0.0, "histogram": {}}
        insert_ignoring_duplicates(
            collection, [{"_id": doc_id, **doc["key"], **empty} for doc_id, doc in folded.items()]
        )
        result = collection.bulk_write(
            [UpdateOne({"_id": doc_id}, _change(doc)) for doc_id, doc in folded.items()],
            ordered=False,
        )
        return result.matched_count

    def build_project_metrics(self) -> int:
        """Make the ``project_metrics`` of every endpoint document stored before they
        existed (once per database, marked in ``store_meta``); how many were made.

        Each roll-up is set to the sum of its endpoint documents, so running
        again after an interruption gives the same result. Points ingested
        while it runs can be counted in a roll-up twice or not at all: it runs
        once, when a store first opens with this version.
        """
        meta = self.db[STORE_META]
        if meta.find_one({"_id": PROJECT_METRICS}) is not None:
            return 0
        sums: dict[str, dict[str, Any]] = {}
        for resolution in RESOLUTIONS:
            for doc in self.endpoint_metrics.find({"resolution": eq(resolution)}, {"_id": 0}):
                start = doc.get("bucket_start")
                if not isinstance(start, datetime) or "project_key" not in doc:
                    continue
                key = rollup_key(resolution, as_utc(start), str(doc.get("app_version") or ""))
                _fold(sums, str(doc["project_key"]), key, as_utc(start), _as_point(doc))
        for chunk in _chunks(list(sums.items()), 1000):
            insert_ignoring_duplicates(
                self.project_metrics,
                [{"_id": doc_id, **doc["key"]} for doc_id, doc in chunk],
            )
            self.project_metrics.bulk_write(
                [UpdateOne({"_id": doc_id}, _total(doc)) for doc_id, doc in chunk], ordered=False
            )
        meta.update_one({"_id": PROJECT_METRICS}, {"$set": {"done": True}}, upsert=True)
        return len(sums)

    def _update_keyed_documents(self, folded: Mapping[str, Mapping[str, Any]]) -> None:
        """Apply the changes whose document has an older, non-key ``_id``."""
        present = {
            doc["_id"]
            for doc in self.endpoint_metrics.find({"_id": {"$in": list(folded)}}, {"_id": 1})
        }
        updates = [
            UpdateOne(
                {
                    field: eq(value)
                    for field, value in doc["key"].items()
                    if field != "bucket_start"  # dates are not indexed; the epoch is
                },
                _change(doc),
            )
            for doc_id, doc in folded.items()
            if doc_id not in present
        ]
        if updates:
            self.endpoint_metrics.bulk_write(updates, ordered=False)

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
        return _window_docs(
            self.endpoint_metrics,
            project_key,
            since,
            until,
            resolution,
            {"route": route, "method": method, "app_version": app_version},
        )

    def project_metric_docs(
        self,
        project_key: str,
        *,
        since: datetime,
        until: datetime,
        resolution: str = "1m",
        app_version: str | None = None,
    ) -> list[dict[str, Any]]:
        """The project's roll-ups (every route) of one resolution whose bucket starts in
        [since, until): as many documents as buckets (times app versions), however many
        routes the project has."""
        return _window_docs(
            self.project_metrics,
            project_key,
            since,
            until,
            resolution,
            {"app_version": app_version},
        )

    def app_versions(self, project_key: str) -> list[str]:
        """Every app version that sent metrics for the project."""
        versions = self.endpoint_metrics.distinct(
            "app_version", {"project_key": eq(project_key), "resolution": eq("1h")}
        )
        return sorted(str(version) for version in versions)

    def version_request_count(self, project_key: str, app_version: str) -> int:
        """Requests of one app version counted by the 1-minute metric documents."""
        documents = self.endpoint_metrics.find(
            {
                "project_key": eq(project_key),
                "app_version": eq(app_version),
                "resolution": eq("1m"),
            },
            {"count": 1},
        )
        return sum(int(document.get("count", 0)) for document in documents)


def _window_docs(
    collection: Collection[Document],
    project_key: str,
    since: datetime,
    until: datetime,
    resolution: str,
    equal: Mapping[str, str | None],
) -> list[dict[str, Any]]:
    """A project's metric documents of one resolution whose bucket starts in [since, until),
    with the fields of ``equal`` that are not None equal to their value."""
    if resolution not in RESOLUTIONS:
        raise ParameterError(f"resolution must be one of {sorted(RESOLUTIONS)}")
    query: dict[str, Any] = {
        "project_key": eq(project_key),
        "resolution": eq(resolution),
        "bucket_epoch": {"$gte": epoch(since), "$lt": epoch(until)},
    }
    query.update({field: eq(value) for field, value in equal.items() if value is not None})
    return list(collection.find(query, {"_id": 0, "project_key": 0, "bucket_epoch": 0}))


def rollup_key(resolution: str, start: datetime, app_version: str) -> dict[str, Any]:
    """The key of a ``project_metrics`` document: its endpoint fields are empty."""
    return {
        "resolution": resolution,
        "bucket_epoch": epoch(start),
        "route": "",
        "method": "",
        "status_class": "",
        "app_version": app_version,
    }


def _fold(
    folded: dict[str, dict[str, Any]],
    project_key: str,
    key: Mapping[str, Any],
    start: datetime,
    point: Mapping[str, Any],
) -> None:
    """Add one metric point to the change of the document ``key`` names."""
    doc = folded.setdefault(
        metric_id(project_key, key),
        {
            "key": {"project_key": project_key, "bucket_start": start, **key},
            "inc": {"count": 0, "errors": 0, "duration_sum": 0.0},
            "min": float(point["duration_min"]),
            "max": float(point["duration_max"]),
        },
    )
    inc = doc["inc"]
    inc["count"] += int(point["count"])
    inc["errors"] += int(point["errors"])
    inc["duration_sum"] += float(point["duration_sum"])
    for bucket, bucket_count in point["histogram"].items():
        name = f"histogram.{int(bucket)}"
        inc[name] = inc.get(name, 0) + int(bucket_count)
    # Keys arrive escaped (collector.schemas.diagnostics.escape_key): no '.'.
    for kind, kind_count in (point.get("exceptions") or {}).items():
        name = f"exceptions.{kind}"
        inc[name] = inc.get(name, 0) + int(kind_count)
    doc["min"] = min(doc["min"], float(point["duration_min"]))
    doc["max"] = max(doc["max"], float(point["duration_max"]))


def _as_point(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored metric document read as the metric point it sums."""
    return {
        "count": doc.get("count") or 0,
        "errors": doc.get("errors") or 0,
        "duration_sum": doc.get("duration_sum") or 0.0,
        "duration_min": doc.get("duration_min") if doc.get("duration_min") is not None else 0.0,
        "duration_max": doc.get("duration_max") or 0.0,
        "histogram": doc.get("histogram") or {},
        "exceptions": doc.get("exceptions") or {},
    }


def _total(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``$set`` that makes a document hold exactly the folded sums."""
    histogram: dict[str, int] = {}
    exceptions: dict[str, int] = {}
    values: dict[str, Any] = {}
    for name, value in doc["inc"].items():
        family, _, member = name.partition(".")
        if family == "histogram" and member:
            histogram[member] = value
        elif family == "exceptions" and member:
            exceptions[member] = value
        else:
            values[name] = value
    return {
        "$set": {
            **values,
            "histogram": histogram,
            "exceptions": exceptions,
            "duration_min": doc["min"],
            "duration_max": doc["max"],
        }
    }


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _change(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "$inc": doc["inc"],
        "$min": {"duration_min": doc["min"]},
        "$max": {"duration_max": doc["max"]},
    }
