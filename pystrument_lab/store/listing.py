"""The records listing: filtered, sorted pages by offset or cursor, and their bounded count.

Every listing path costs the same whatever the store holds: rows come from
the index of their filter, a cursor page asks the index for the values past
the last one shown, and the count stops at :data:`COUNT_LIMIT` + 1 matches.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING

from pystrument_lab.errors import ParameterError
from pystrument_lab.store.records import RecordFilters, record_query
from pystrument_lab.store.schema import Collections, bounded_count, public

if TYPE_CHECKING:
    from typing_extensions import Unpack


#: A listing counts its matches up to this many, then says "COUNT_LIMIT+"
#: (counting every match is a full pass over them: seconds at 100k records).
COUNT_LIMIT = 1000
#: The deepest offset ``skip`` (``page``/``size``) reaches; deeper pages
#: follow the cursor, which costs the same at any depth.
MAX_SKIP = 10_000


#: Sort names the API accepts, and the stored field each one sorts on.
_SORTABLE = {
    "timestamp": "ts",
    "total_duration": "total_duration",
    "status_code": "status_code",
    "route": "route",
    "method": "method",
    "app_version": "app_version",
    "path": "path",
}
#: The time windows a newest-first ``min_duration`` page is looked for in
#: (seconds: an hour, then 8 × wider up to ~3.7 years; ``_find_sorted``).
_FIRST_WINDOW = 3600.0
_LAST_WINDOW = 3600.0 * 8**5
#: Sorts a cursor can page: a numeric field with few ties.
KEYSET_SORTS = ("ts", "total_duration")


def sort_spec(sort: str) -> tuple[str, int]:
    name = sort.lstrip("+-")
    if name not in _SORTABLE:
        raise ParameterError(f"cannot sort by {name!r}; choose one of {sorted(_SORTABLE)}")
    return _SORTABLE[name], DESCENDING if sort.startswith("-") else ASCENDING


@dataclass
class RecordPage:
    """One page of a listing: rows, the bounded count and the cursor of the next page."""

    items: list[dict[str, Any]]
    count: int
    count_exact: bool
    next_cursor: str | None


def encode_cursor(field: str, direction: int, value: Any, seen: Iterable[str]) -> str:
    raw = json.dumps({"f": field, "d": direction, "v": value, "s": sorted(seen)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str, direction: int) -> tuple[Any, set[str]]:
    """(last value, ids already shown at that value) of a cursor made for this sort."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, seen = raw["v"], {str(item) for item in raw["s"]}
        valid = (
            raw["f"] == field
            and raw["d"] == direction
            and isinstance(value, (int, float))
            and len(seen) <= 10_000
        )
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise ParameterError("cursor: not a cursor of this listing's sort; start from page 1")
    return value, seen


class ListingQueries(Collections):
    """Pages of ``performance_records``."""

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
        """Records matching the filters, newest first by default, and their count.

        The count stops at :data:`COUNT_LIMIT` (see :meth:`page_records`);
        callers that only want the rows (the loaders) pass ``with_total=False``
        and get ``len(items)``.
        """
        page = self.page_records(
            project_key,
            sort=sort,
            skip=skip,
            limit=limit,
            projection=projection,
            count=with_total,
            **filters,
        )
        return page.items, page.count

    def page_records(
        self,
        project_key: str,
        *,
        sort: str = "-timestamp",
        skip: int = 0,
        limit: int | None = 20,
        cursor: str | None = None,
        projection: Mapping[str, Any] | None = None,
        count: bool = True,
        **filters: Unpack[RecordFilters],
    ) -> RecordPage:
        """One page by offset (``skip`` ≤ :data:`MAX_SKIP`) or by ``cursor`` (any depth).

        A cursor page asks the index for ``value <= last`` (or ``>=``) and drops
        the rows the previous page already showed at that value, so ties are
        neither lost nor repeated. The count stops at :data:`COUNT_LIMIT` + 1
        matches (:meth:`count_records_upto`); ``count_exact`` says whether it
        stopped there.
        """
        query = record_query(project_key, **filters)
        counted = dict(query)  # the count is of every match, not of the rest after a cursor
        field, direction = sort_spec(sort)
        seen: set[str] = set()
        if cursor is not None:
            if field not in KEYSET_SORTS:
                raise ParameterError(
                    f"cursor: pages by cursor sort by one of {list(KEYSET_SORTS)}, not {sort!r}"
                )
            value, seen = decode_cursor(cursor, field, direction)
            bound = {"$lte" if direction == DESCENDING else "$gte": value}
            query[field] = {**query.get(field, {}), **bound}
            skip = 0
        elif skip > MAX_SKIP:
            raise ParameterError(
                f"page: offsets reach {MAX_SKIP} records; follow next_cursor for deeper pages"
            )
        wanted = None if limit is None else limit + len(seen)
        # A duration range sorted by time is the one listing whose rows the
        # count is needed for: it decides how they are read (_find_sorted).
        ranged = "total_duration" in counted and field == "ts" and direction == DESCENDING
        matches = self.count_records_upto(counted, COUNT_LIMIT + 1) if count or ranged else 0
        found = self._find_sorted(
            query,
            projection,
            field,
            direction,
            skip,
            wanted,
            by_window=ranged and matches > COUNT_LIMIT,
        )
        rows = [doc for doc in found if str(doc["_id"]) not in seen]
        if limit is not None:
            rows = rows[:limit]
        items: list[dict[str, Any]] = [public(doc) for doc in rows]  # type: ignore[misc]
        next_cursor = None
        if field in KEYSET_SORTS and limit is not None and len(rows) == limit and rows:
            last = rows[-1].get(field)
            if isinstance(last, (int, float)):
                at_last = {str(doc["_id"]) for doc in rows if doc.get(field) == last}
                if cursor is not None and value == last:
                    at_last |= seen
                next_cursor = encode_cursor(field, direction, last, at_last)
        if not count:
            return RecordPage(items, len(items), True, next_cursor)
        return RecordPage(items, min(matches, COUNT_LIMIT), matches <= COUNT_LIMIT, next_cursor)

    def _find_sorted(
        self,
        query: dict[str, Any],
        projection: Mapping[str, Any] | None,
        field: str,
        direction: int,
        skip: int,
        wanted: int | None,
        *,
        by_window: bool,
    ) -> list[dict[str, Any]]:
        """The first ``skip + wanted`` matches in sort order, less the first ``skip``.

        ``by_window``: newest first with a ``min_duration`` that matches more
        than :data:`COUNT_LIMIT` records. Given ``total_duration >= x`` and no
        ``ts`` range, the embedded server reads every match through the
        duration index and sorts them (0.4 s at 100k records for a filter
        matching 20 %); with a ``ts`` lower bound it walks the time index
        newest first and stops at the page. So the page is looked for in the
        newest hour before the upper bound, then in windows 8 × wider, until
        one holds it; the rows read stay about ``wanted`` / (the share of
        records matching), whatever the store holds. A filter that matches
        few records (the count stops below the limit) reads them all through
        the duration index: at most :data:`COUNT_LIMIT`.
        """

        def fetch(filter_: Mapping[str, Any]) -> list[dict[str, Any]]:
            found = self.records.find(filter_, projection).sort(field, direction).skip(skip)
            return list(found if wanted is None else found.limit(wanted))

        if not by_window or wanted is None:
            return fetch(query)
        bounds: dict[str, float] = dict(query.get("ts") or {})
        top = bounds.get("$lte", bounds.get("$lt", time.time()))
        floor = bounds.get("$gte")
        width = _FIRST_WINDOW
        while width <= _LAST_WINDOW and (floor is None or top - width > floor):
            rows = fetch({**query, "ts": {**bounds, "$gte": top - width}})
            if len(rows) == wanted:
                return rows
            width *= 8
        return fetch(query)

    def count_records_upto(self, query: Mapping[str, Any], bound: int) -> int:
        """How many records match ``query``, counting no further than ``bound``.

        :func:`~pystrument_lab.store.schema.bounded_count`: a skipping
        ``find`` and, under ``bound``, the ``count`` command. Not
        ``$match`` + ``$limit`` + ``$count``: the embedded server counts the
        whole collection before any aggregation (``SELECT COUNT(1)``, the
        ~40 ms more every listing paid at 600k records); not ``count_documents(limit=)``
        either, an aggregation that also decodes every match.
        """
        return bounded_count(self.records, query, bound)


__all__ = [
    "COUNT_LIMIT",
    "KEYSET_SORTS",
    "MAX_SKIP",
    "ListingQueries",
    "RecordPage",
    "sort_spec",
]
