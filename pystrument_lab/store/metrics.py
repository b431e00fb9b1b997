"""Pre-aggregated endpoint metrics (``endpoint_metrics``) and metric batch ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from pystrument_lab.errors import ParameterError
from pystrument_lab.store.schema import (
    RESOLUTIONS,
    Collections,
    as_utc,
    floor_time,
    insert_ignoring_duplicates,
    utcnow,
)


class MetricQueries(Collections):
    """Metric documents: one per (project, resolution, bucket, route, method, status class, version)."""

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
            insert_ignoring_duplicates(
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

    def version_request_count(self, project_key: str, app_version: str) -> int:
        """Requests of one app version counted by the 1-minute metric documents."""
        documents = self.endpoint_metrics.find(
            {"project_key": project_key, "app_version": app_version, "resolution": "1m"},
            {"count": 1},
        )
        return sum(int(document.get("count", 0)) for document in documents)
