"""Report documents (``reports``): one per papermill run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING

from pystrument_lab.store.schema import Collections, as_utc, public

FINISHED = ["completed", "failed"]


class ReportQueries(Collections):
    """Queries of report documents."""

    def new_report_id(self) -> ObjectId:
        return ObjectId()

    def insert_report(self, document: Mapping[str, Any]) -> None:
        self.reports.insert_one(dict(document))

    def finish_report(self, report_id: Any, outcome: Mapping[str, Any]) -> None:
        """Store a report's outcome and stamp ``finished_at`` (server time)."""
        self.reports.update_one(
            {"_id": report_id}, {"$set": dict(outcome), "$currentDate": {"finished_at": True}}
        )

    def get_report(self, report_id: Any) -> dict[str, Any] | None:
        """A report by id (an ObjectId or its string; None for anything else)."""
        if not isinstance(report_id, ObjectId):
            if not ObjectId.is_valid(report_id):
                return None
            report_id = ObjectId(report_id)
        return public(self.reports.find_one({"_id": report_id}))

    def list_reports(
        self,
        *,
        project_key: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int = 50,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Reports newest first, optionally of one project and status (or statuses)."""
        query: dict[str, Any] = {}
        if project_key is not None:
            query["project_key"] = project_key
        if isinstance(status, str):
            query["status"] = status
        elif status is not None:
            query["status"] = {"$in": list(status)}
        cursor = self.reports.find(query, projection).sort("created_at", DESCENDING).limit(limit)
        return [public(doc) for doc in cursor]  # type: ignore[misc]

    def running_reports(self) -> list[dict[str, Any]]:
        """Reports still running, without their parameters."""
        return [
            public(doc)  # type: ignore[misc]
            for doc in self.reports.find({"status": "running"}, {"params": 0})
        ]

    def finished_reports_before(self, cutoff: datetime) -> list[dict[str, Any]]:
        """Finished reports created before ``cutoff``: ``_id`` and ``folder``."""
        query = {"created_at": {"$lt": as_utc(cutoff)}, "status": {"$in": FINISHED}}
        return list(self.reports.find(query, {"_id": 1, "folder": 1}))

    def delete_reports(self, report_ids: Sequence[Any]) -> int:
        if not report_ids:
            return 0
        return self.reports.delete_many({"_id": {"$in": list(report_ids)}}).deleted_count

    def report_folders(self) -> list[str]:
        """The folder of every report document that has one."""
        return [
            str(doc["folder"]) for doc in self.reports.find({}, {"folder": 1}) if doc.get("folder")
        ]
