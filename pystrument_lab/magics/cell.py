"""``%%pystrument``: profile a cell with pyinstrument, show its call tree, optionally store it.

The cell runs through the shell (``run_cell``), so its output, its last
expression and its errors look as they would without the magic. The tree
shown is the cell's own: the ``<module>`` frames the shell executed, below
IPython's machinery. With ``--save PROJECT`` the profile is stored as a
record of that project in the SDK's record format: method ``CELL``, path and
route ``--route`` (default ``notebook-cell``), status 200 (500 when the cell
raised), the wall time as ``total_duration``, the flattened tree as
``function_calls`` (the SDK's own flattening) and the compressed pyinstrument
session, trimmed to the cell.

Cells with top-level ``await`` are refused: the shell is already inside its
event loop when a magic runs, so the cell cannot be awaited from here.
"""

from __future__ import annotations

import os
import platform
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument, magic_arguments

from pystrument_lab.magics.args import parse
from pystrument_lab.magics.errors import PystrumentUsageError, usage_errors

if TYPE_CHECKING:
    from performance_monitor.core.tree import Node
    from pyinstrument.session import Session

    from pystrument_lab.magics.magic import Pystrument

__all__ = ["cell_record", "cell_tree", "profile_cell"]

DEFAULT_ROUTE = "notebook-cell"
MODULE = "<module>"
_HERE = os.path.abspath(__file__)


@magic_arguments(name="pystrument")
@argument("--save", metavar="PROJECT", help="store the profile as a record of this project")
@argument("--route", help=f"path and route of the stored record (default: {DEFAULT_ROUTE})")
@argument("--version", help="app_version of the stored record")
@argument("--interval", type=float, help="sampling interval in seconds (default: %%config)")
@argument("--flame", action="store_true", help="show a flame graph instead of the tree widget")
def cell_arguments(magic: Pystrument, line: str) -> None:
    """%%pystrument: profile this cell with pyinstrument and show its call tree."""


def profile_cell(magic: Pystrument, line: str, cell: str) -> Any:
    """Run ``cell`` under pyinstrument; return the tree view (and store the record with --save)."""
    args = parse(cell_arguments, line)
    if args is None:
        return None
    shell = magic.shell
    if shell is None:
        raise PystrumentUsageError("%%pystrument needs an IPython shell")
    if shell.should_run_async(
        cell, transformed_cell=shell.transform_cell(cell), preprocessing_exc_tuple=None
    ):
        raise PystrumentUsageError(
            "%%pystrument cannot profile a cell with top-level `await`; put the code in an "
            "`async def` and call it with `asyncio.run(...)` from a thread, or profile the "
            "synchronous part"
        )
    project_key = None
    if args.save:
        with usage_errors(magic.store_url()):
            project_key = magic.lab.project_key(args.save)  # fail before running the cell

    from pyinstrument import Profiler

    profiler = Profiler(interval=args.interval or magic.interval, async_mode="disabled")
    started = time.time()
    clock = time.perf_counter()
    profiler.start()
    try:
        outcome = _run_profiled(shell, cell)
    finally:
        session = profiler.stop()
    wall = time.perf_counter() - clock

    root = cell_tree(session)
    if root is None:
        print("%%pystrument: the cell ran too quickly to be sampled; nothing to show.")
        return None
    from performance_monitor.core.tree import flatten

    from pystrument_lab.calltree import CallTree
    from pystrument_lab.magics.trees import show_tree

    nodes = flatten(root)
    route = args.route or DEFAULT_ROUTE
    if project_key is not None:
        record = cell_record(
            session,
            nodes,
            route=route,
            started=started,
            wall=wall,
            failed=not outcome.success,
            app_version=args.version,
        )
        with usage_errors(magic.store_url()):
            store = magic.lab.store
            store.insert_records(project_key, [record])
            store.touch_project(project_key)
        print(f"saved as record {record['trace_id']} of project {args.save!r} (route {route})")
    title = f"cell {route}: {wall * 1000:.0f} ms"
    return show_tree(magic, CallTree.from_nodes(nodes), title=title, flame=args.flame)


def _run_profiled(shell: Any, cell: str) -> Any:
    # Named so that cell_tree can find where the cell starts in the session.
    return shell.run_cell(cell, store_history=False)


def _is_anchor(function_name: str, file_path: str) -> bool:
    return function_name == "_run_profiled" and os.path.abspath(file_path or "") == _HERE


def cell_tree(session: Session) -> Node | None:
    """The cell's call tree: the cell's ``<module>`` frames below :func:`_run_profiled`.

    One frame when the shell ran the cell as one code object; several (under
    a ``<cell>`` root) when it ran statements separately.
    """
    from performance_monitor.core.tree import Node, session_tree

    full = session_tree(session)
    if full is None:
        return None
    anchors = [node for node in _walk(full) if _is_anchor(node.function_name, node.file_path)]
    if not anchors:
        return None
    library = tuple(session.sys_prefixes)  # a lazy import's <module> is not the cell
    modules: list[Node] = []
    pending = list(anchors[0].children)
    while pending:
        node = pending.pop(0)
        if node.function_name != MODULE:
            pending.extend(node.children)
        elif not node.file_path.startswith(library):
            modules.append(node)
    if not modules:
        return None
    if len(modules) == 1:
        return modules[0]
    return Node(
        function_name="<cell>",
        file_path=modules[0].file_path,
        line_number=1,
        duration=sum(node.duration for node in modules),
        is_application=True,
        children=modules,
    )


def _walk(root: Node) -> list[Node]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(node.children))
    return found


def cell_record(
    session: Session,
    nodes: list[dict[str, Any]],
    *,
    route: str,
    started: float,
    wall: float,
    failed: bool = False,
    app_version: str | None = None,
) -> dict[str, Any]:
    """A record in the SDK's format (docs/data-model.md), as the collector stores it."""
    import IPython

    from pystrument_lab.treeformats import session_to_bytes

    timestamp = datetime.fromtimestamp(started, tz=timezone.utc)
    cell_files = {node["file_path"] for node in nodes if node["function_name"] == MODULE}
    return {
        "trace_id": uuid.uuid4().hex,
        "timestamp": timestamp.replace(microsecond=timestamp.microsecond // 1000 * 1000),
        "request_info": {
            "method": "CELL", "path": route, "route": route, "query_params": {},
            "headers": {}, "user_agent": "", "remote_ip": "",
        },
        "response_info": {"status_code": 500 if failed else 200, "response_size": 0,
                          "content_type": ""},
        "performance_metrics": {
            "total_duration": wall,
            "cpu_time": session.cpu_time,
            "memory_usage": {"peak_memory": 0.0, "memory_delta": 0.0},
            "database_metrics": {"query_count": 0, "query_time": 0.0, "slow_queries": []},
            "cache_metrics": {"cache_hits": 0, "cache_misses": 0, "cache_time": 0.0},
        },
        "function_calls": nodes,
        "profile_session": session_to_bytes(_trim_to_cell(session, cell_files)),
        "version_info": {"app_version": app_version, "git_commit": None, "deploy_time": None},
        "environment": {
            "python_version": platform.python_version(),
            "framework": "ipython",
            "framework_version": IPython.__version__,
            "server_info": {"hostname": socket.gethostname(), "pid": os.getpid()},
        },
        "tags": {"source": "notebook"},
    }  # fmt: skip


def _trim_to_cell(session: Session, cell_files: set[str]) -> Session:
    """The session with each stack starting at the cell's ``<module>`` frame (as the SDK trims)."""
    from performance_monitor.core.tree import trim_session
    from pyinstrument.frame_info import frame_info_get_identifier

    def cell_frame(stack: list[str]) -> int | None:
        for position, info in enumerate(stack):
            parts = frame_info_get_identifier(info).split("\x00")
            if parts[0] == MODULE and len(parts) > 1 and parts[1] in cell_files:
                return position
        return None

    return trim_session(session, cell_frame, "%%pystrument cell")
