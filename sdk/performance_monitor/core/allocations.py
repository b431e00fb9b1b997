"""Where a sampled request's memory was allocated: its top application functions.

With ``track_memory`` on, tracemalloc's traces (started by :mod:`.memory`)
are read at the request's end and grouped by the line that allocated, less
what each line held at its start; lines in application files are kept. The
traces are read as tracemalloc returns them and grouped by a loop that
allocates nothing per trace, after tracing stopped when this was the last
tracked request: grouping through ``Snapshot.statistics`` / ``compare_to``
while tracing cost ~850 ms on a request holding 10,000 new dicts. tracemalloc records
:data:`TRACE_FRAMES` frame per allocation (its default): deeper tracebacks
would credit allocations made inside libraries to the application line that
called them, but cost several times more per allocation and per snapshot
while pyinstrument samples (measured: 8 frames made a sampled 3,000-object
request 3-5x slower), so memory allocated inside a library is not
attributed. The record keeps the
:data:`MAX_SITES` largest sites as ``{function, file, line, size, count}``
(bytes and blocks still allocated at the end: memory the request retained
or handed on, such as its response, not a transient peak). Sites are looked
for only in a request whose traced memory grew by
:data:`ALLOCATION_MIN_BYTES` (reading the traces costs in proportion to
what is traced; a small request's sites say little). When the request
started tracemalloc itself, there is nothing to compare with and nothing is
read at the start. Overlapping tracked requests share
tracemalloc, so their sites include each other's allocations.
"""

from __future__ import annotations

import ast
import heapq
import tracemalloc
from functools import lru_cache
from typing import Any

from .application import is_application_path

TRACE_FRAMES = 1
MAX_SITES = 20
#: Sites are looked for only when traced memory grew by this much during the request.
ALLOCATION_MIN_BYTES = 1_000_000

#: (file, line) -> [bytes, blocks] still allocated there, application lines only.
Sites = dict[tuple[str, int], list[int]]


def traces() -> list[Any]:
    """tracemalloc's traces as it returns them: ``(domain, size, frames, ...)`` per block.

    ``frames`` is a tuple of ``(file, line)``, most recent first. This is the
    list :func:`tracemalloc.take_snapshot` wraps; its ``statistics`` and
    ``compare_to`` group it in Python through an object per trace, ~10 us a
    trace (~0.4 s for the 40,000 blocks of 10,000 small dicts), so the list
    is grouped here directly.
    """
    return tracemalloc._get_traces()  # type: ignore[attr-defined,no-any-return]


def group(raw: list[Any]) -> Sites:
    """Bytes and blocks per allocating line, kept for application files only.

    The loop allocates nothing per trace (sizes are collected, then summed in
    C): it may run while tracemalloc traces, which costs microseconds per
    allocation, each new ``int`` of a running total included.
    """
    lines: dict[tuple[str, int], list[int]] = {}
    for trace in raw:
        frames = trace[2]
        if frames:
            sizes = lines.get(frames[0])
            if sizes is None:
                lines[frames[0]] = [trace[1]]
            else:
                sizes.append(trace[1])
    return {
        line: [sum(sizes), len(sizes)]
        for line, sizes in lines.items()
        if is_application_path(line[0])
    }


def start_snapshot(fresh: bool) -> Sites | None:
    """What the end is compared with: None when tracing started with this request."""
    return None if fresh else group(traces())


def allocation_sites(
    raw: list[Any], before: Sites | None, limit: int = MAX_SITES
) -> list[dict[str, Any]]:
    """The request's top allocation sites in application code.

    ``raw``: :func:`traces` at the request's end (taken before tracing stops;
    grouping it can wait until then, so that its own objects are not traced);
    ``before``: :func:`start_snapshot`'s. A line's size and count are what it
    holds at the end less what it held at the start, where that grew.
    """
    sites = group(raw)
    if before is not None:
        for line, (size, count) in before.items():
            entry = sites.get(line)
            if entry is not None:
                entry[0] -= size
                entry[1] -= count
    grown = [(line, entry) for line, entry in sites.items() if entry[0] > 0]
    ranked = heapq.nlargest(limit, grown, key=lambda item: item[1][0])
    return [
        {
            "function": function_at(file, line),
            "file": file,
            "line": line,
            "size": size,
            "count": count,
        }
        for (file, line), (size, count) in ranked
    ]


@lru_cache(maxsize=512)
def _functions(file: str) -> tuple[tuple[int, int, str], ...]:
    try:
        with open(file, "rb") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return ()
    found = [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return tuple(found)


def function_at(file: str, line: int) -> str:
    """The innermost function of ``file`` containing ``line`` (tracemalloc keeps no names)."""
    best: tuple[int, str] | None = None
    for start, end, name in _functions(file):
        if start <= line <= end and (best is None or start > best[0]):
            best = (start, name)
    return best[1] if best is not None else "<module>"
