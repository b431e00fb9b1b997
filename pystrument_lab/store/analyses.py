"""Analyses (``ai_analysis_results``): the documents analysis jobs live in.

The job logic (states, priorities, leases) is in
:mod:`pystrument_lab.analysis.jobs`; these are its queries. Lease times
(``lease_expires``) and ``completed_epoch`` are float epoch seconds: the
embedded server cannot compare dates written by ``$currentDate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument

from pystrument_lab.store.schema import Collections, eq, public

#: The history counts up to this many analyses ("1000+" beyond).
HISTORY_COUNT_LIMIT = 1000

ACTIVE = ["pending", "running"]
FINISHED = ["completed", "failed"]


def _by_id(analysis_id: Any) -> dict[str, Any]:
    if isinstance(analysis_id, ObjectId):
        return {"_id": analysis_id}
    if not ObjectId.is_valid(analysis_id):
        return {"_id": None}
    return {"_id": ObjectId(analysis_id)}


class AnalysisQueries(Collections):
    """Queries of analysis jobs and their results."""

    def new_analysis_id(self) -> ObjectId:
        return ObjectId()

    def insert_analysis(self, document: Mapping[str, Any]) -> str:
        """Store an analysis document; its id as a string."""
        return str(self.analyses.insert_one(dict(document)).inserted_id)

    def active_analysis(self, project_key: str, record_key: str) -> dict[str, Any] | None:
        """The pending or running analysis of one record (by its record key), if any."""
        for status in ACTIVE:  # two $eq lookups: $in is never served from an index
            found = self.analyses.find_one(
                {
                    "record_key": eq(record_key),
                    "status": eq(status),
                    "project_key": eq(project_key),
                }
            )
            if found is not None:
                return found
        return None

    def has_analysis(self, project_key: str, record_key: str) -> bool:
        """Whether any analysis (in any state) exists for the record (by its record key)."""
        query = {"project_key": eq(project_key), "record_key": eq(record_key)}
        return self.analyses.find_one(query, {"_id": 1}) is not None

    def claim_analysis(
        self,
        *,
        expired_before: float | None,
        queues: Sequence[str] | None,
        changes: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Atomically take the best job and apply ``changes`` (+1 attempt, started now).

        ``expired_before`` set: a running job whose lease expired before that
        epoch; else a pending one. Highest priority first, then oldest.
        """
        query: dict[str, Any] = (
            {"status": eq("pending")}
            if expired_before is None
            else {"status": eq("running"), "lease_expires": {"$lt": expired_before}}
        )
        if queues:
            query["queue"] = {"$in": list(queues)}
        job = self.analyses.find_one_and_update(
            query,
            {"$set": dict(changes), "$inc": {"attempts": 1}, "$currentDate": {"started_at": True}},
            sort=[("priority", DESCENDING), ("created_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return dict(job) if job is not None else None

    def active_analyses(self) -> list[dict[str, Any]]:
        """Every pending or running job: queue, status, worker, lease."""
        fields = {"queue": 1, "status": 1, "worker": 1, "lease_expires": 1}
        return [
            doc for status in ACTIVE for doc in self.analyses.find({"status": eq(status)}, fields)
        ]

    def finished_analyses(self, since_epoch: float) -> list[dict[str, Any]]:
        """Jobs completed or failed since ``since_epoch``: queue and status."""
        return [
            doc
            for status in FINISHED
            for doc in self.analyses.find(
                {"status": eq(status), "completed_epoch": {"$gte": since_epoch}},
                {"queue": 1, "status": 1},
            )
        ]

    def update_claimed_analysis(
        self, analysis_id: Any, claim: str, changes: Mapping[str, Any], *, completed: bool
    ) -> bool:
        """Apply ``changes`` to a running job still held by ``claim``; True when it was.

        ``completed`` also stamps ``completed_at`` (server time).
        """
        update: dict[str, Any] = {"$set": dict(changes)}
        if completed:
            update["$currentDate"] = {"completed_at": True}
        result = self.analyses.update_one(
            {"_id": analysis_id, "claim": claim, "status": "running"}, update
        )
        return (result.modified_count if completed else result.matched_count) == 1

    def get_analysis(self, analysis_id: Any) -> dict[str, Any] | None:
        return public(self.analyses.find_one(_by_id(analysis_id), {"claim": 0}))

    def analysis_by_task(self, task_id: str) -> dict[str, Any] | None:
        return self.analyses.find_one({"task_id": eq(task_id)})

    def analysis_history(
        self,
        project_key: str,
        *,
        status: str | None = None,
        trace_id: str | None = None,
        skip: int = 0,
        limit: int = 20,
    ) -> tuple[list[dict[str, Any]], int]:
        """A project's analyses, newest first, and their count (up to
        :data:`HISTORY_COUNT_LIMIT`: counting reads every match)."""
        query: dict[str, Any] = {"project_key": eq(project_key)}
        if status is not None:
            query["status"] = eq(status)
        if trace_id is not None:
            query["trace_id"] = eq(trace_id)
        total = len(list(self.analyses.find(query, {"_id": 1}).limit(HISTORY_COUNT_LIMIT)))
        cursor = self.analyses.find(query, {"claim": 0, "analysis_input": 0})
        items = cursor.sort("created_at", DESCENDING).skip(skip).limit(limit)
        return [public(doc) for doc in items], total  # type: ignore[misc]
