"""Optimisation suggestions built from a finding's evidence.

Each suggestion names the function, its ``file:line`` and the statement,
call or allocation it is about, and its code example is made from that
evidence: the repeated statement rewritten as one ``IN`` query and the
eager-loading option of the ORM the request used, an index on the columns
the slow statement filters by, the blocking call the function waited in,
the library call its CPU time went to, the line holding the memory. Where
the evidence cannot say more, the suggestion says what to measure next.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["suggestion_for"]

_PRIORITY = {"critical": "high", "high": "high", "medium": "medium", "low": "low"}
_CATEGORY = {
    "n_plus_one": "database",
    "slow_sql": "database",
    "waiting": "architecture",
    "memory_growth": "architecture",
    "cpu_hotspot": "algorithm",
}
_EQUALS = re.compile(r"(?P<column>[\w.\"`\[\]]+)\s*=\s*\?")
_FILTERED = re.compile(
    r"(?P<column>[\w.\"`\[\]]+)\s*(?:=|<=|>=|<|>|\bLIKE\b|\bIN\b|\bBETWEEN\b)", re.IGNORECASE
)
_TABLE = re.compile(r"\bFROM\s+(?P<table>[\w.\"`\[\]]+)", re.IGNORECASE)
_ORDER = re.compile(r"\bORDER\s+BY\s+(?P<columns>[\w.\"`\[\], ]+)", re.IGNORECASE)


def suggestion_for(
    finding: dict[str, Any], *, framework: str = "", libraries: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The SPEC §3 suggestion for one rule finding.

    ``framework`` is the app's (``flask``, ``django``, ``fastapi``) and
    ``libraries`` the top-level packages seen in the request's tree.
    """
    kind = finding["kind"]
    build = _BUILDERS[kind]
    title, description, code, improvement = build(finding, framework, libraries)
    return {
        "category": _CATEGORY[kind],
        "priority": _PRIORITY[finding["severity"]],
        "title": title,
        "description": description,
        "code_example": code,
        "expected_improvement": improvement,
        "kind": kind,
        "function": finding["function"],
    }


def _at(finding: dict[str, Any]) -> str:
    location = finding.get("location") or ""
    return f"{finding['function']} ({location})" if location else finding["function"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def one_query_for_all(statement: str) -> str:
    """``statement`` with its first ``column = ?`` as ``column IN (?, ?, ?)``."""
    return _EQUALS.sub(lambda m: f"{m.group('column')} IN (?, ?, ?)", statement, count=1)


def _n_plus_one(
    finding: dict[str, Any], framework: str, libraries: frozenset[str]
) -> tuple[str, str, str, str]:
    evidence = finding["evidence"]
    statement = str(evidence.get("statement") or "")
    repeats = float(evidence.get("repeats") or 0)
    lines = [f"# {_at(finding)} runs this {repeats:.0f} times per request:"]
    lines.append(f"#   {statement}" if statement else "#   (one query per item)")
    if statement and _EQUALS.search(statement):
        lines += [
            "# One query for all the items, then group the rows in Python:",
            one_query_for_all(statement),
        ]
    if framework == "django" or "django" in libraries:
        lines += [
            "",
            "# Django ORM: load the related rows with the parent rows",
            'queryset = queryset.prefetch_related("<relation>")  # one extra query per relation',
            'queryset = queryset.select_related("<foreign key>")  # or a JOIN, for a foreign key',
        ]
    elif "sqlalchemy" in libraries:
        lines += [
            "",
            "# SQLAlchemy: load the relation for every parent in one SELECT ... IN",
            "from sqlalchemy.orm import selectinload",
            "stmt = select(Parent).options(selectinload(Parent.children))",
        ]
    title = f"Run one query instead of {repeats:.0f} in {finding['function']}"
    description = (
        f"{_at(finding)} runs the same statement {repeats:.0f} times per request, once per item "
        "(the N+1 pattern). Fetch the rows for all items in one query and look them up in Python."
    )
    improvement = f"{repeats:.0f} queries per request become 1; most of the {finding['impact']:.0%} of the request they take"
    return title, description, "\n".join(lines), improvement


def index_for(statement: str) -> str | None:
    """A ``CREATE INDEX`` on the table and the columns ``statement`` filters and sorts by."""
    table = _TABLE.search(statement)
    where = re.split(r"\bWHERE\b", statement, maxsplit=1, flags=re.IGNORECASE)
    if table is None or len(where) < 2:
        return None
    clause = re.split(r"\b(?:GROUP|ORDER|LIMIT)\b", where[1], maxsplit=1, flags=re.IGNORECASE)[0]
    columns = [m.group("column") for m in _FILTERED.finditer(clause)]
    order = _ORDER.search(statement)
    if order:
        columns += [c.split()[0] for c in order.group("columns").split(",") if c.strip()]
    columns = [
        c.split(".")[-1] for c in dict.fromkeys(columns) if c.upper() not in ("AND", "OR", "NOT")
    ]
    if not columns:
        return None
    name = table.group("table").split(".")[-1].strip('"`[]')
    clean = [c.strip('"`[]') for c in columns[:3]]
    return f"CREATE INDEX ix_{name}_{'_'.join(clean)} ON {name} ({', '.join(clean)});"


def _slow_sql(
    finding: dict[str, Any], framework: str, libraries: frozenset[str]
) -> tuple[str, str, str, str]:
    evidence = finding["evidence"]
    statement = str(evidence.get("statement") or "")
    duration = float(evidence.get("duration") or 0.0)
    lines = [
        f"-- {_at(finding)}: {_ms(duration)} per request",
        "-- see how the database runs it (PostgreSQL: EXPLAIN ANALYZE; SQLite: EXPLAIN QUERY PLAN)",
        f"EXPLAIN {statement}" if statement else "EXPLAIN <the statement>",
    ]
    index = index_for(statement)
    if index:
        lines += [
            "-- a full scan of the table shows as 'Seq Scan' / 'SCAN': index what it filters by",
            index,
        ]
    if re.search(r"LIKE\s+'?%", statement, re.IGNORECASE):
        lines.append(
            "-- a LIKE pattern starting with % cannot use a b-tree index: use full-text search"
        )
    if not re.search(r"\bLIMIT\b", statement, re.IGNORECASE):
        lines.append(
            "-- and fetch only the rows the response shows: add LIMIT/OFFSET or keyset paging"
        )
    title = f"Speed up the slow statement in {finding['function']}"
    description = (
        f"{_at(finding)} spends {_ms(duration)} per request on one statement. Read its plan; "
        "an index on the filtered columns, or fetching fewer rows, usually fixes it."
    )
    return (
        title,
        description,
        "\n".join(lines),
        f"up to the statement's {finding['impact']:.0%} of the request",
    )


def _library(call: str) -> str:
    """``get (httpx/_client.py)`` → ``httpx``; ``time.sleep`` → ``time``."""
    if "(" in call:
        where = call.rsplit("(", 1)[1].rstrip(")")
        return where.split("/", 1)[0] if "/" in where else where.rsplit(".", 1)[0]
    return call.split(".", 1)[0]


def _waiting(
    finding: dict[str, Any], framework: str, libraries: frozenset[str]
) -> tuple[str, str, str, str]:
    evidence = finding["evidence"]
    waits = evidence.get("waits") or {}
    calls = evidence.get("wait_calls") or {}
    top_wait = next(iter(waits), "")
    top_call = next(iter(calls), "")
    is_async = "[await]" in waits
    lines = [f"# {_at(finding)} waits in {top_call or top_wait or 'a blocking call'}"]
    library = _library(top_call) if top_call else ""
    if "sleep" in top_wait and not top_call:
        lines += [
            "# a sleep inside the request: remove it, or do the delayed work in a background job"
        ]
    elif top_wait.endswith("acquire") or "own code" in top_wait or top_wait.endswith("wait"):
        lines += [
            "# waiting for a lock, a queue or a pool held by other work:",
            "# hold the lock only around the shared state (compute outside it),",
            "# give each key its own lock, or size the pool for the concurrency you serve",
        ]
    elif (
        library in ("requests", "urllib", "urllib3", "http", "httpx", "socket", "ssl")
        and framework == "fastapi"
        and not is_async
    ):
        lines += [
            "# a blocking HTTP call on the event loop stalls every other request: use the async client",
            "async with httpx.AsyncClient(timeout=2.0) as client:",
            "    response = await client.get(url)",
        ]
    else:
        lines += [
            "# bound the wait and run independent calls at the same time",
            "async with httpx.AsyncClient(timeout=2.0) as client:  # sync code: concurrent.futures",
            "    first, second = await asyncio.gather(client.get(url_a), client.get(url_b))",
            "# or cache the answer for a short time if it does not change per request",
        ]
    title = f"Stop waiting in {finding['function']} on the request's time"
    description = (
        f"{_at(finding)} waits {finding['impact']:.0%} of the request off the CPU"
        + (f", in {top_call}" if top_call else (f", in {top_wait}" if top_wait else ""))
        + ". Bound it with a timeout, overlap independent waits, cache the answer, or move the work out of the request."
    )
    return (
        title,
        description,
        "\n".join(lines),
        f"the {finding['impact']:.0%} spent waiting, less the slowest call that remains",
    )


def _cpu_hotspot(
    finding: dict[str, Any], framework: str, libraries: frozenset[str]
) -> tuple[str, str, str, str]:
    evidence = finding["evidence"]
    calls = evidence.get("calls") or {}
    seconds = float(evidence.get("cpu_seconds") or 0.0)
    top_call, top_seconds = next(iter(calls.items()), ("", 0.0))
    if top_call and top_seconds >= 0.5 * seconds:
        lines = [
            f"# {top_seconds / seconds:.0%} of {finding['function']}'s CPU time is in {top_call}:",
            "# call it once per request instead of per item, on less data, or cache its result",
            "@functools.lru_cache(maxsize=1024)  # when the same inputs repeat between calls",
            f"def {finding['function']}(...): ...",
        ]
        where = f"in {top_call}"
    else:
        lines = [
            f"# the time is in {finding['function']}'s own lines: find the line first",
            "#   pip install line_profiler; kernprof -lv app.py   (decorate it with @profile)",
            "# then: a set or dict instead of list lookups, built-ins instead of Python loops,",
            "# or the result cached when it only depends on its inputs (functools.lru_cache)",
        ]
        where = "in its own code"
    title = f"Reduce the CPU work in {finding['function']}"
    description = f"{_at(finding)} computes for {_ms(seconds)} per request ({finding['impact']:.0%}), mostly {where}."
    return (
        title,
        description,
        "\n".join(lines),
        f"most of the {finding['impact']:.0%} spent in {finding['function']}",
    )


def _memory(
    finding: dict[str, Any], framework: str, libraries: frozenset[str]
) -> tuple[str, str, str, str]:
    evidence = finding["evidence"]
    size = max(
        float(evidence.get("peak_memory") or 0.0), float(evidence.get("memory_delta") or 0.0)
    )
    site = evidence.get("allocation_site") or None
    held = (
        f"{site['file']}:{site['line']}" if site else finding.get("location") or finding["function"]
    )
    lines = [
        f"# {held} holds {size:.1f} MB per request; twenty requests in flight hold {20 * size:.0f} MB",
        "# build and send it in chunks instead of all at once:",
        "def chunks(rows):",
        "    for batch in itertools.batched(rows, 1000):",
        '        yield b"".join(encode(row) for row in batch)',
    ]
    if framework == "django":
        lines.append("return StreamingHttpResponse(chunks(rows))")
    elif framework == "fastapi":
        lines.append("return StreamingResponse(chunks(rows))")
    else:
        lines.append("return Response(chunks(rows))  # Flask streams a generator")
    if not site:
        lines.append(
            "# no line still held it at the end: run tracemalloc around this function to see where"
        )
    title = f"Stream what {finding['function']} builds instead of holding it in memory"
    description = f"The request holds up to {size:.1f} MB, allocated in {_at(finding)}."
    return (
        title,
        description,
        "\n".join(lines),
        f"peak memory per request from {size:.1f} MB to one chunk",
    )


_BUILDERS = {
    "n_plus_one": _n_plus_one,
    "slow_sql": _slow_sql,
    "waiting": _waiting,
    "cpu_hotspot": _cpu_hotspot,
    "memory_growth": _memory,
}
