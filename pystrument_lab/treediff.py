"""Compare two call trees (typically two versions' merged trees).

Every time in a diff is a **mean per request**: each side's time divided by
the number of requests it aggregates (``CallTree.n_trees``), so a tree merged
from 200 requests compares fairly with one merged from 50. For two single
records that is simply their times.

Ranking rule of :func:`function_changes`: functions are ordered by the change
of their *self* time per request, largest increase first (ties: larger
change of total time, then name). Self time is used rather than total time
because a slowdown in one function raises the total of every caller up to
the root; its self time moves only in the function that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pystrument_lab.calltree import ROOT, CallNode, CallTree, FrameKey
from pystrument_lab.treemerge import merge_trees
from pystrument_lab.treestats import Engine, FunctionStats, function_stats, to_frame

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    import polars as pl

__all__ = [
    "FUNCTION_CHANGE_COLUMNS",
    "DiffNode",
    "FunctionChange",
    "Status",
    "TreeDiff",
    "diff_trees",
    "function_change_rows",
    "function_changes",
]

Status = Literal["added", "removed", "changed"]


@dataclass(slots=True, eq=False)
class DiffNode:
    """One path present in a, b or both; times are per request."""

    function_name: str
    file_path: str
    line_number: int
    is_application: bool
    time_a: float
    time_b: float
    self_a: float
    self_b: float
    share_a: float  # of a's root time
    share_b: float
    count_a: int  # requests of a that had the path
    count_b: int
    depth: int = 0
    children: list[DiffNode] = field(default_factory=list)
    parent: DiffNode | None = field(default=None, repr=False)

    @property
    def key(self) -> FrameKey:
        return (self.function_name, self.file_path, self.line_number)

    @property
    def location(self) -> str:
        return f"{self.file_path}:{self.line_number}"

    @property
    def delta(self) -> float:
        return self.time_b - self.time_a

    @property
    def self_delta(self) -> float:
        return self.self_b - self.self_a

    @property
    def share_delta(self) -> float:
        return self.share_b - self.share_a

    @property
    def status(self) -> Status:
        if not self.count_a:
            return "added"
        if not self.count_b:
            return "removed"
        return "changed"


@dataclass(slots=True)
class TreeDiff:
    root: DiffNode
    n_a: int
    n_b: int

    def walk(self) -> Iterator[DiffNode]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def find(self, function_name: str) -> list[DiffNode]:
        return [n for n in self.walk() if n.function_name == function_name]

    def lookup(self, path: tuple[FrameKey, ...]) -> DiffNode | None:
        """The node of a path of frame keys from the root, if the diff has it."""
        if not path or path[0] != self.root.key:
            return None
        node = self.root
        for key in path[1:]:
            found = next((c for c in node.children if c.key == key), None)
            if found is None:
                return None
            node = found
        return node


def diff_trees(a: CallTree, b: CallTree) -> TreeDiff:
    """Align ``a`` and ``b`` path by path; see the module doc for the units."""
    # Merging a lone tree folds repeated sibling frames into one path.
    a, b = merge_trees([a]), merge_trees([b])
    total_a = a.per_request(a.root.duration)
    total_b = b.per_request(b.root.duration)

    def make(x: CallNode | None, y: CallNode | None, parent: DiffNode | None) -> DiffNode:
        ref = y if y is not None else x
        assert ref is not None
        time_a = a.per_request(x.duration) if x else 0.0
        time_b = b.per_request(y.duration) if y else 0.0
        node = DiffNode(
            function_name=ref.function_name,
            file_path=ref.file_path,
            line_number=ref.line_number,
            is_application=ref.is_application or bool(x and x.is_application),
            time_a=time_a,
            time_b=time_b,
            self_a=a.per_request(x.self_time) if x else 0.0,
            self_b=b.per_request(y.self_time) if y else 0.0,
            share_a=time_a / total_a if total_a else 0.0,
            share_b=time_b / total_b if total_b else 0.0,
            count_a=x.count if x else 0,
            count_b=y.count if y else 0,
            depth=0 if parent is None else parent.depth + 1,
            parent=parent,
        )
        if parent is not None:
            parent.children.append(node)
        return node

    stack: list[tuple[CallNode | None, CallNode | None, DiffNode]]
    if a.root.key == b.root.key:
        root = make(a.root, b.root, None)
        stack = [(a.root, b.root, root)]
    else:  # different entry points: compare them side by side under a synthetic root
        root = make(
            CallNode(ROOT, duration=a.root.duration), CallNode(ROOT, duration=b.root.duration), None
        )
        root.count_a, root.count_b = a.n_trees, b.n_trees
        stack = [(CallNode(ROOT, children=[a.root]), CallNode(ROOT, children=[b.root]), root)]
    while stack:
        x, y, parent = stack.pop()
        for cx, cy in _pair_children(x, y):
            stack.append((cx, cy, make(cx, cy, parent)))
    for node in TreeDiff(root, a.n_trees, b.n_trees).walk():
        node.children.sort(key=lambda c: max(c.time_a, c.time_b), reverse=True)
    return TreeDiff(root, a.n_trees, b.n_trees)


def _pair_children(
    x: CallNode | None, y: CallNode | None
) -> list[tuple[CallNode | None, CallNode | None]]:
    in_a = {c.key: c for c in x.children} if x else {}
    in_b = {c.key: c for c in y.children} if y else {}
    keys = list(in_b) + [k for k in in_a if k not in in_b]
    return [(in_a.get(k), in_b.get(k)) for k in keys]


@dataclass(frozen=True, slots=True)
class FunctionChange:
    """A function's time in a and b, per request (see the module doc)."""

    function: str
    file: str
    line: int
    is_application: bool
    self_a: float
    self_b: float
    self_delta: float
    total_a: float
    total_b: float
    total_delta: float
    share_a: float  # self time over the root total
    share_b: float
    share_delta: float
    calls_a: int
    calls_b: int
    status: Status


def function_change_rows(a: CallTree, b: CallTree) -> list[FunctionChange]:
    """Per-function changes, the function that got slower (self time) first."""
    stats_a = {s.key: s for s in function_stats(a)}
    stats_b = {s.key: s for s in function_stats(b)}
    keys = list(stats_b) + [k for k in stats_a if k not in stats_b]
    rows = [_change(k, stats_a.get(k), stats_b.get(k)) for k in keys]
    rows.sort(key=lambda r: (-r.self_delta, -r.total_delta, r.function, r.file, r.line))
    return rows


def _change(key: FrameKey, sa: FunctionStats | None, sb: FunctionStats | None) -> FunctionChange:
    self_a = sa.self_per_request if sa else 0.0
    self_b = sb.self_per_request if sb else 0.0
    total_a = sa.total_per_request if sa else 0.0
    total_b = sb.total_per_request if sb else 0.0
    share_a = sa.share if sa else 0.0
    share_b = sb.share if sb else 0.0
    status: Status = "added" if sa is None else "removed" if sb is None else "changed"
    return FunctionChange(
        function=key[0],
        file=key[1],
        line=key[2],
        is_application=bool((sa and sa.is_application) or (sb and sb.is_application)),
        self_a=self_a,
        self_b=self_b,
        self_delta=self_b - self_a,
        total_a=total_a,
        total_b=total_b,
        total_delta=total_b - total_a,
        share_a=share_a,
        share_b=share_b,
        share_delta=share_b - share_a,
        calls_a=sa.calls if sa else 0,
        calls_b=sb.calls if sb else 0,
        status=status,
    )


#: Column name → polars dtype name of :func:`function_changes`.
FUNCTION_CHANGE_COLUMNS: dict[str, str] = {
    "function": "String",
    "file": "String",
    "line": "Int64",
    "self_a": "Float64",
    "self_b": "Float64",
    "self_delta": "Float64",
    "total_a": "Float64",
    "total_b": "Float64",
    "total_delta": "Float64",
    "share_a": "Float64",
    "share_b": "Float64",
    "share_delta": "Float64",
    "calls_a": "Int64",
    "calls_b": "Int64",
    "status": "String",
    "is_application": "Boolean",
}


def function_changes(
    a: CallTree, b: CallTree, *, engine: Engine = "polars"
) -> pl.DataFrame | pd.DataFrame:
    """:func:`function_change_rows` as a DataFrame (columns :data:`FUNCTION_CHANGE_COLUMNS`)."""
    rows = function_change_rows(a, b)
    columns = {name: [getattr(r, name) for r in rows] for name in FUNCTION_CHANGE_COLUMNS}
    return to_frame(columns, FUNCTION_CHANGE_COLUMNS, engine=engine)
