"""Where the time goes in a call tree: hot paths and per-function statistics.

Tables are polars DataFrames by default and pandas with ``engine="pandas"``;
both libraries are imported only when a table is built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pystrument_lab.calltree import OTHER, CallNode, CallTree, FrameKey, walk
from pystrument_lab.treemerge import exact_sum

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "Engine",
    "FunctionStats",
    "HotPath",
    "SELF_TIME_COLUMNS",
    "function_stats",
    "hot_paths",
    "self_time_table",
    "to_frame",
]

Engine = Literal["polars", "pandas"]


@dataclass(frozen=True, slots=True)
class HotPath:
    """A root-to-leaf path and the time spent at its end."""

    nodes: tuple[CallNode, ...]
    time: float  # the leaf's time, summed over the tree's requests
    per_request: float
    share: float  # of the root's total

    @property
    def functions(self) -> list[str]:
        return [node.function_name for node in self.nodes]

    def __str__(self) -> str:
        return " → ".join(self.functions)


def hot_paths(tree: CallTree, n: int = 5, *, include_other: bool = False) -> list[HotPath]:
    """The ``n`` heaviest root-to-leaf paths, heaviest first.

    A path weighs its leaf's duration (a leaf's duration is its self time).
    Leaves holding pruned time (``"[other]"``) are skipped unless
    ``include_other``; ties keep pre-order.
    """
    leaves = [
        node
        for node in walk(tree.root)
        if not node.children and (include_other or not node.is_other)
    ]
    leaves.sort(key=lambda leaf: leaf.duration, reverse=True)
    total = tree.root.duration
    return [
        HotPath(
            nodes=(*leaf.ancestors(), leaf),
            time=leaf.duration,
            per_request=tree.per_request(leaf.duration),
            share=leaf.duration / total if total else 0.0,
        )
        for leaf in leaves[:n]
    ]


@dataclass(frozen=True, slots=True)
class FunctionStats:
    """One function's time across a tree.

    ``total_time`` counts only the outermost call on each path, so recursion
    is not double-counted; ``occurrences`` is the number of nodes of the
    function, ``calls`` the number of (request, path) pairs that reached it.
    """

    function: str
    file: str
    line: int
    is_application: bool
    self_time: float
    total_time: float
    self_per_request: float
    total_per_request: float
    occurrences: int
    calls: int
    share: float  # self time over the root's total
    total_share: float

    @property
    def key(self) -> FrameKey:
        return (self.function, self.file, self.line)


class _FunctionAcc:
    __slots__ = ("calls", "is_application", "occurrences", "selfs", "totals")

    def __init__(self) -> None:
        self.selfs: list[float] = []
        self.totals: list[float] = []
        self.occurrences = 0
        self.calls = 0
        self.is_application = False


def _accumulate(tree: CallTree) -> dict[FrameKey, _FunctionAcc]:
    accs: dict[FrameKey, _FunctionAcc] = {}
    active: Counter[FrameKey] = Counter()  # frames on the current root-to-node path
    stack: list[tuple[CallNode, bool]] = [(tree.root, True)]
    while stack:
        node, entering = stack.pop()
        key = node.key
        if not entering:
            active[key] -= 1
            continue
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = _FunctionAcc()
        acc.selfs.extend((node.self_time, node.self_residual))
        if not active[key]:
            acc.totals.extend((node.duration, node.duration_residual))
        acc.occurrences += node.occurrences
        acc.calls += node.count
        acc.is_application = acc.is_application or node.is_application
        active[key] += 1
        stack.append((node, False))
        stack.extend((child, True) for child in reversed(node.children))
    return accs


def function_stats(tree: CallTree) -> list[FunctionStats]:
    """Per-function statistics, by self time descending (ties by name).

    Sums are exact (see :mod:`pystrument_lab.treemerge`): a function's
    ``self_time`` in a merged tree equals ``math.fsum`` of that function's
    self times in the original trees.
    """
    total = tree.root.duration
    rows = []
    for (function, file, line), acc in _accumulate(tree).items():
        self_time = exact_sum(acc.selfs)[0]
        total_time = exact_sum(acc.totals)[0]
        rows.append(
            FunctionStats(
                function=function,
                file=file,
                line=line,
                is_application=acc.is_application,
                self_time=self_time,
                total_time=total_time,
                self_per_request=tree.per_request(self_time),
                total_per_request=tree.per_request(total_time),
                occurrences=acc.occurrences,
                calls=acc.calls,
                share=self_time / total if total else 0.0,
                total_share=total_time / total if total else 0.0,
            )
        )
    rows.sort(key=lambda row: (-row.self_time, row.function, row.file, row.line))
    return rows


#: Column name → polars dtype name of :func:`self_time_table`.
SELF_TIME_COLUMNS: dict[str, str] = {
    "function": "String",
    "file": "String",
    "line": "Int64",
    "self_time": "Float64",
    "total_time": "Float64",
    "self_per_request": "Float64",
    "total_per_request": "Float64",
    "occurrences": "Int64",
    "calls": "Int64",
    "share": "Float64",
    "total_share": "Float64",
    "is_application": "Boolean",
}


def self_time_table(
    tree: CallTree, *, engine: Engine = "polars", include_other: bool = True
) -> pl.DataFrame | pd.DataFrame:
    """One row per function (see :class:`FunctionStats`), by self time descending.

    Times are sums over the tree's requests; the ``*_per_request`` columns
    divide by ``tree.n_trees``. ``"[other]"`` (pruned time) is a row of its
    own so that ``share`` adds up to 1, unless ``include_other`` is False.
    """
    stats = [s for s in function_stats(tree) if include_other or s.function != OTHER]
    columns = {name: [getattr(s, name) for s in stats] for name in SELF_TIME_COLUMNS}
    return to_frame(columns, SELF_TIME_COLUMNS, engine=engine)


def to_frame(
    columns: Mapping[str, Sequence[Any]], schema: Mapping[str, str], *, engine: Engine
) -> pl.DataFrame | pd.DataFrame:
    """A DataFrame from columns, typed by polars dtype names even when empty."""
    import polars as pl

    frame = pl.DataFrame(
        {name: list(columns[name]) for name in schema},
        schema={name: getattr(pl, dtype) for name, dtype in schema.items()},
    )
    if engine == "polars":
        return frame
    if engine == "pandas":
        return frame.to_pandas()
    raise ValueError(f"engine must be 'polars' or 'pandas', not {engine!r}")
