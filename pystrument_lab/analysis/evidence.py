"""What the data measures, per application function: the evidence the rule engine reads.

Every finding is built from measurements, never from what functions are
called: the SQL statements the SDK recorded with their call sites, the
allocation sites tracemalloc saw, and the call tree read against the
request's CPU time.

**Owners.** A node's time belongs to the nearest application function at or
above it; comprehensions, lambdas and generator expressions (the code
objects Python names ``<listcomp>``, ``<lambda>``, …) belong to the function
that holds them.

**Time classes.** Each node's self time is one of:

- ``wait``: pyinstrument's ``[await]`` (an async task suspended) or a C call
  of the standard library that blocks the thread (sleep, lock and condition
  waits, socket and file reads, select/poll): :data:`BLOCKING_CALLS`;
- ``database``: in a database driver or ORM (:data:`DATABASE_LIBRARIES`);
- ``python``: library code, Python or C (a regex, ``json.dumps``, a big
  ``bytes`` join), which holds the GIL and runs on the CPU;
- ``opaque``: an application function's own time. It computes, or it waits
  where the profiler sees no call (``with lock:`` blocks inside the
  statement, not in a call).

**Opaque time, read against CPU time.** The SDK measures the request
thread's CPU time. CPU time the other classes do not account for is opaque
time on the CPU; the rest of the opaque time waited. The longest opaque
blocks are taken as the waits (a wait is one long block; CPU work spreads
over many lines), up to the time the request did not spend on the CPU,
less the time its thread waited for a CPU on a loaded machine
(``run_queue_time``, measured by the SDK on Linux) and the waits for the
GIL: a thread that keeps losing the GIL to another blocks once per switch
interval, so each voluntary context switch (``context_switches``) may hide
up to :data:`GIL_SWITCH_INTERVAL` of such waiting; a lock held for 200 ms is
one switch. A request that
allocated tens of megabytes also stalls on fresh memory off the CPU; its
opaque time is not read as waiting (``infer_waits=False``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pystrument_lab.calltree import CallNode, CallTree, walk

__all__ = [
    "BLOCKING_CALLS",
    "DATABASE_LIBRARIES",
    "AllocationSite",
    "Attribution",
    "Statement",
    "attribute",
    "libraries_in",
    "owner_in_tree",
    "owner_of",
    "statements_of",
    "allocations_of",
]

#: C calls of the standard library that block the calling thread (pyinstrument
#: shows them as ``<built-in>`` frames named ``module.function`` or ``type.method``).
BLOCKING_CALLS = frozenset(
    {
        "sleep",
        "acquire",
        "wait",
        "select",
        "poll",
        "epoll",
        "kqueue",
        "control",
        "recv",
        "recv_into",
        "recvfrom",
        "recvfrom_into",
        "accept",
        "connect",
        "connect_ex",
        "getaddrinfo",
        "gethostbyname",
        "read",
        "readinto",
        "readline",
        "waitpid",
        "join",
        "sendall",
    }
)

#: Path parts of database drivers and ORMs: time below them is the database's.
DATABASE_LIBRARIES = (
    "sqlite3",
    "sqlalchemy",
    "django/db",
    "psycopg",
    "pymysql",
    "mysql",
    "pymongo",
    "asyncpg",
    "aiosqlite",
    "peewee",
    "tortoise",
)

_BUILTIN_FILES = ("<built-in>", "")

#: CPython's default ``sys.getswitchinterval()``: the longest a thread waits for
#: the GIL each time another thread holds it, in pure Python code.
GIL_SWITCH_INTERVAL = 0.005


def is_anonymous(name: str) -> bool:
    """A code object Python names itself: ``<listcomp>``, ``<lambda>``, ``<genexpr>``, …"""
    return name.startswith("<")


def owner_of(node: CallNode) -> CallNode | None:
    """The application function a node's time belongs to (comprehensions to their function)."""
    current: CallNode | None = node
    while current is not None and not (
        current.is_application and not is_anonymous(current.function_name)
    ):
        current = current.parent
    return current


def _is_database(node: CallNode) -> bool:
    if node.is_application:
        return False
    path = node.file_path.replace("\\", "/").lower()
    if any(part in path for part in DATABASE_LIBRARIES):
        return True
    # A driver's C call (``sqlite3.Cursor.execute``) under a database frame.
    parent = node.parent
    return node.file_path in _BUILTIN_FILES and parent is not None and _is_database(parent)


def _is_blocking(node: CallNode) -> bool:
    if node.function_name == "[await]":
        return True
    if node.is_application or node.file_path not in _BUILTIN_FILES:
        return False
    return node.function_name.rsplit(".", 1)[-1] in BLOCKING_CALLS


@dataclass
class FunctionTime:
    """One application function's time per request, by class."""

    node: CallNode  # its outermost node (for file and line)
    python: float = 0.0
    database: float = 0.0
    opaque_cpu: float = 0.0
    wait: float = 0.0
    #: The blocking calls below it, by name, and their seconds (the evidence of a wait).
    waits: dict[str, float] = field(default_factory=dict)
    #: The library calls it makes that waited, by name (``get (httpx/_client.py)``).
    wait_calls: dict[str, float] = field(default_factory=dict)
    #: The library calls below it, by name, and their seconds (where its CPU time goes).
    calls: dict[str, float] = field(default_factory=dict)

    @property
    def busy(self) -> float:
        """Seconds on the CPU (its code and the libraries it calls, not the database)."""
        return self.python + self.opaque_cpu

    @property
    def total(self) -> float:
        return self.python + self.database + self.opaque_cpu + self.wait


@dataclass
class Attribution:
    """The request's time split over application functions, per request."""

    functions: dict[str, FunctionTime]
    wall: float
    cpu: float | None

    def ranked(self, key: str) -> list[FunctionTime]:
        return sorted(self.functions.values(), key=lambda f: -float(getattr(f, key)))


def attribute(
    tree: CallTree | None,
    wall: float,
    cpu: float | None,
    run_queue: float | None = None,
    *,
    switches: float | None = None,
    infer_waits: bool = True,
) -> Attribution:
    """Split ``tree``'s time (per request) over its application functions.

    ``run_queue``: seconds the thread was ready but waited for a CPU; that
    part of the time off the CPU is the machine's load, not a wait.
    ``switches``: its voluntary context switches, each of which may have been
    a wait for the GIL rather than the request's own.
    """
    functions: dict[str, FunctionTime] = {}
    if tree is None:
        return Attribution(functions, wall, cpu)
    n = max(tree.n_trees, 1)
    opaque: list[tuple[float, FunctionTime, CallNode]] = []
    python = database = waited = 0.0
    for node in walk(tree.root):
        owner = owner_of(node)
        if owner is None or node.is_other:
            continue
        seconds = node.self_time / n
        if seconds <= 0:
            continue
        entry = functions.get(owner.function_name)
        if entry is None:
            entry = functions[owner.function_name] = FunctionTime(owner)
        if _is_blocking(node):
            entry.wait += seconds
            name = _call_name(node)
            entry.waits[name] = entry.waits.get(name, 0.0) + seconds
            _credit(entry.wait_calls, entry, node, seconds)
            waited += seconds
        elif _is_database(node):
            entry.database += seconds
            database += seconds
        elif node.is_application:
            opaque.append((seconds, entry, node))
        else:
            entry.python += seconds
            python += seconds
            _credit(entry.calls, entry, node, seconds)
    # CPU time the Python code and the database do not account for ran in
    # opaque blocks; what the request did not spend on the CPU, less the
    # waits already seen, waited in the longest opaque blocks.
    opaque_total = sum(seconds for seconds, _, _ in opaque)
    if cpu is None or not infer_waits:
        to_wait = 0.0
    else:
        off_cpu = max(
            0.0, wall - cpu - (run_queue or 0.0) - (switches or 0.0) * GIL_SWITCH_INTERVAL
        )
        cpu_in_opaque = max(0.0, cpu - python - database)
        to_wait = max(0.0, min(opaque_total - cpu_in_opaque, off_cpu - waited))
    left = to_wait
    for seconds, entry, node in sorted(opaque, key=lambda item: -item[0]):
        as_wait = min(seconds, left)
        left -= as_wait
        if as_wait > 0:
            entry.wait += as_wait
            name = _call_name(node)
            entry.waits[name] = entry.waits.get(name, 0.0) + as_wait
            _credit(entry.wait_calls, entry, node, as_wait)
        entry.opaque_cpu += seconds - as_wait
    return Attribution(functions, wall, cpu)


def _call_name(node: CallNode) -> str:
    """How a wait is named in evidence: the call, or the line of an application frame."""
    if node.is_application:
        return f"{node.function_name} (own code, line {node.line_number})"
    return node.function_name


def _credit(calls: dict[str, float], entry: FunctionTime, node: CallNode, seconds: float) -> None:
    """Credit ``seconds`` to the call ``entry``'s function makes that leads to ``node``.

    Named ``function (library/file.py)``: the last two parts of its path tell
    which library it is. Time in the function's own frame is not a call.
    """
    if node.is_application:
        return
    call = node
    while (
        call.parent is not None and call.parent is not entry.node and not call.parent.is_application
    ):
        call = call.parent
    calls[call_label(call)] = calls.get(call_label(call), 0.0) + seconds


def call_label(node: CallNode) -> str:
    parts = node.file_path.replace("\\", "/").rsplit("/", 2)
    where = "/".join(parts[-2:]) if len(parts) > 1 else node.file_path
    return f"{node.function_name} ({where})" if where else node.function_name


# -- SQL statements and allocation sites -------------------------------------------


@dataclass
class Statement:
    """One normalized statement over the analysed requests (means per request)."""

    text: str
    count: float  # executions per request
    total_duration: float  # seconds per request
    max_duration: float
    requests: int  # how many of the analysed requests ran it
    function: str
    file: str
    line: int


@dataclass
class AllocationSite:
    """One application line holding memory at the requests' end (means per request)."""

    function: str
    file: str
    line: int
    size_mb: float
    count: float
    requests: int


def _database_metrics(record: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = record.get("performance_metrics") or {}
    return metrics.get("database_metrics") or {}


def statements_of(records: Sequence[Mapping[str, Any]]) -> list[Statement]:
    """The records' statements merged by text, costliest first (means over all records)."""
    n = max(len(records), 1)
    merged: dict[str, dict[str, Any]] = {}
    for record in records:
        items = (_database_metrics(record).get("statements") or {}).get("items") or []
        for item in items:
            text = str(item.get("statement") or "")
            if not text:
                continue
            entry = merged.setdefault(
                text, {"count": 0.0, "total": 0.0, "max": 0.0, "requests": 0, "sites": {}}
            )
            entry["count"] += float(item.get("count") or 0)
            entry["total"] += float(item.get("total_duration") or 0.0)
            entry["max"] = max(entry["max"], float(item.get("max_duration") or 0.0))
            entry["requests"] += 1
            site = item.get("call_site") or {}
            key = (
                str(site.get("function") or ""),
                str(site.get("file") or ""),
                int(site.get("line") or 0),
            )
            entry["sites"][key] = entry["sites"].get(key, 0) + 1
    statements = []
    for text, entry in merged.items():
        function, file, line = max(entry["sites"], key=lambda k: entry["sites"][k])
        statements.append(
            Statement(
                text=text,
                count=entry["count"] / n,
                total_duration=entry["total"] / n,
                max_duration=entry["max"],
                requests=entry["requests"],
                function=function,
                file=file,
                line=line,
            )
        )
    statements.sort(key=lambda s: -s.total_duration)
    return statements


def allocations_of(records: Sequence[Mapping[str, Any]]) -> list[AllocationSite]:
    """The records' allocation sites merged by line, largest first (means over all records)."""
    n = max(len(records), 1)
    merged: dict[tuple[str, str, int], list[float]] = {}
    for record in records:
        memory = (record.get("performance_metrics") or {}).get("memory_usage") or {}
        for site in memory.get("allocations") or []:
            key = (
                str(site.get("function") or ""),
                str(site.get("file") or ""),
                int(site.get("line") or 0),
            )
            entry = merged.setdefault(key, [0.0, 0.0, 0.0])
            entry[0] += float(site.get("size") or 0) / (1024 * 1024)
            entry[1] += float(site.get("count") or 0)
            entry[2] += 1
    sites = [
        AllocationSite(function, file, line, size / n, count / n, int(requests))
        for (function, file, line), (size, count, requests) in merged.items()
    ]
    sites.sort(key=lambda s: -s.size_mb)
    return sites


def owner_in_tree(tree: CallTree | None, function: str, file: str, line: int) -> CallNode | None:
    """The tree's owner of a call site (a comprehension's site names its function)."""
    if tree is None or not function:
        return None
    best: CallNode | None = None
    for node in walk(tree.root):
        if node.function_name != function or (file and node.file_path != file):
            continue
        owner = owner_of(node)
        if owner is not None and (best is None or owner.duration > best.duration):
            best = owner
    if best is None and file:
        # Not sampled: the site's function is the application function of that file
        # whose definition starts closest above the line.
        for node in walk(tree.root):
            if (
                node.is_application
                and node.file_path == file
                and node.line_number <= line
                and not is_anonymous(node.function_name)
                and (best is None or node.line_number > best.line_number)
            ):
                best = node
    return best


def libraries_in(tree: CallTree | None) -> frozenset[str]:
    """The top-level packages of the library frames in ``tree`` (``site-packages/<name>/``)."""
    if tree is None:
        return frozenset()
    names = set()
    for node in walk(tree.root):
        path = node.file_path.replace("\\", "/")
        if not node.is_application and "-packages/" in path:
            names.add(path.split("-packages/", 1)[1].split("/", 1)[0])
    return frozenset(names)
