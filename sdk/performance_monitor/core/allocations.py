"""Where a sampled request's memory was allocated: its top application functions.

With ``track_memory`` on, tracemalloc (started by :mod:`.memory`) is
compared at the request's end with its start, grouped by the line that
allocated; lines in application files are kept. tracemalloc records
:data:`TRACE_FRAMES` frame per allocation (its default): deeper tracebacks
would credit allocations made inside libraries to the application line that
called them, but cost several times more per allocation and per snapshot
while pyinstrument samples (measured: 8 frames made a sampled 3,000-object
request 3-5x slower), so memory allocated inside a library is not
attributed. The record keeps the
:data:`MAX_SITES` largest sites as ``{function, file, line, size, count}``
(bytes and blocks still allocated at the end: memory the request retained
or handed on, such as its response, not a transient peak). Sites are looked for only in a request whose traced memory grew by
:data:`ALLOCATION_MIN_BYTES` (a snapshot's cost grows with what was
allocated; a small request's sites say little). When the
request started tracemalloc itself, there is nothing to compare with and
no snapshot is taken at the start. Overlapping tracked requests share
tracemalloc, so their sites include each other's allocations.
"""

from __future__ import annotations

import ast
import tracemalloc
from functools import lru_cache
from typing import Any

from .callsite import is_application_file

TRACE_FRAMES = 1
MAX_SITES = 20
#: Sites are looked for only when traced memory grew by this much during the request.
ALLOCATION_MIN_BYTES = 1_000_000


def start_snapshot(fresh: bool) -> tracemalloc.Snapshot | None:
    """What the end is compared with: None when tracing started with this request."""
    return None if fresh else tracemalloc.take_snapshot()


def allocation_sites(
    before: tracemalloc.Snapshot | None, limit: int = MAX_SITES
) -> list[dict[str, Any]]:
    """The request's top allocation sites in application code (call before tracing stops)."""
    snapshot = tracemalloc.take_snapshot()
    sites: dict[tuple[str, int], list[int]] = {}
    if before is None:
        entries = [(s.traceback, s.size, s.count) for s in snapshot.statistics("lineno")]
    else:
        entries = [
            (d.traceback, d.size_diff, d.count_diff)
            for d in snapshot.compare_to(before, "lineno")
            if d.size_diff > 0
        ]
    for traceback, size, count in entries:
        frame = traceback[0]
        if is_application_file(frame.filename):
            site = sites.setdefault((frame.filename, frame.lineno), [0, 0])
            site[0] += size
            site[1] += count
    ranked = sorted(sites.items(), key=lambda item: item[1][0], reverse=True)[:limit]
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
