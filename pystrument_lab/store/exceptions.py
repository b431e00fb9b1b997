"""Records grouped by the exception they raised: the trace page's "same exception" list."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING

from pystrument_lab.store.schema import Collections, as_utc, bounded_count, eq

#: At most this many other records are counted (the page says "1000+").
COUNT_LIMIT = 1000
#: The fields a listed record carries.
LISTED_FIELDS = {
    "_id": 0, "trace_id": 1, "route": 1, "method": 1, "path": 1, "status_code": 1,
    "timestamp": 1, "total_duration": 1, "app_version": 1, "error": 1,
}  # fmt: skip
# The embedded server ignores a dotted projection ("error.message"): the whole
# error is read (its traceback is bounded at ingest) and cut to its message here.


class ExceptionQueries(Collections):
    """The project's other records that raised the same exception type."""

    def same_exception_records(
        self, project_key: str, error_type: str, *, exclude: str, limit: int = 10
    ) -> tuple[list[dict[str, Any]], int]:
        """The newest ``limit`` records of the project (not ``exclude``) whose exception
        type is ``error_type``, and how many there are (at most :data:`COUNT_LIMIT`).

        Served by the ``(project_key, error.type, ts)`` index.
        """
        query = {
            "project_key": eq(project_key),
            "error.type": eq(str(error_type)),  # a value, never an operator
            "trace_id": {"$ne": exclude},
        }
        cursor = (
            self.records.find(query, LISTED_FIELDS)
            .sort("ts", DESCENDING)
            .limit(max(1, min(int(limit), 100)))
        )
        found = []
        for doc in cursor:
            doc["error"] = {"message": (doc.get("error") or {}).get("message")}
            if doc.get("timestamp"):
                doc["timestamp"] = as_utc(doc["timestamp"])
            found.append(doc)
        # bounded_count, not count_documents: an aggregation on the embedded
        # server, which counts the whole collection first
        return found, bounded_count(self.records, query, COUNT_LIMIT)
