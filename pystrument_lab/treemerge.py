"""Merge call trees into an aggregate tree (an endpoint's typical profile).

Nodes are identified by their path of (function_name, file_path, line_number)
frames from the root.

Exact sums
----------
Merged times are correctly rounded sums (:func:`math.fsum`), so the merged
root total equals ``math.fsum(t.root.duration for t in trees)`` whatever the
order of the trees. Each merged node also keeps the rounding residual of its
sum (``duration_residual``/``self_residual``), so totals computed from a merged
tree (per function, or a merge of merged trees) are still the exact sums of
the original values, not sums of rounded sums.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pystrument_lab.calltree import ROOT, CallNode, CallTree, FrameKey, InvalidCallTree, renumber

__all__ = ["exact_sum", "merge_trees"]


def exact_sum(values: list[float]) -> tuple[float, float]:
    """(correctly rounded sum, rounding residual) of ``values``; consumes the list."""
    if len(values) == 1:
        return values[0], 0.0
    total = math.fsum(values)
    values.append(-total)
    return total, math.fsum(values)


class _Acc:
    """A merged node while trees are being added."""

    __slots__ = (
        "children",
        "count",
        "durations",
        "is_application",
        "key",
        "last_tree",
        "occurrences",
        "selfs",
    )

    def __init__(self, key: FrameKey) -> None:
        self.key = key
        self.children: dict[FrameKey, _Acc] = {}
        self.durations: list[float] = []
        self.selfs: list[float] = []
        self.count = 0
        self.occurrences = 0
        self.is_application = False
        self.last_tree = -1

    def add(self, node: CallNode, tree_index: int) -> None:
        self.durations.append(node.duration)
        self.selfs.append(node.self_time)
        if node.duration_residual:
            self.durations.append(node.duration_residual)
        if node.self_residual:
            self.selfs.append(node.self_residual)
        if self.last_tree != tree_index:  # a path repeated inside one tree counts once
            self.count += node.count
            self.last_tree = tree_index
        self.occurrences += node.occurrences
        self.is_application = self.is_application or node.is_application


def merge_trees(trees: Iterable[CallTree | Sequence[Mapping[str, Any]]]) -> CallTree:
    """Aggregate trees into one: nodes are identified by their path of frames.

    Times are exact sums (see the module doc), ``count`` is how many requests
    had the path and ``n_trees`` how many requests were merged, so
    ``tree.per_request(node.duration)`` is the mean per request. Children are
    ordered by total time, heaviest first. Trees whose roots differ hang under
    a synthetic ``"[root]"`` node.

    Items may also be records' flat node lists (one request each): well-formed
    pre-order lists are merged without building a tree first, which is about
    five times faster; other lists go through :meth:`CallTree.from_nodes`.
    """
    top = _Acc((ROOT, "", 0))
    n_trees = 0
    for tree_index, item in enumerate(trees):
        if not isinstance(item, CallTree):
            if _is_plain_preorder(item):
                _add_node_list(top, item, tree_index)
                n_trees += 1
                continue
            item = CallTree.from_nodes(item)
        n_trees += item.n_trees
        _add_tree(top, item, tree_index)
    if n_trees == 0:
        raise InvalidCallTree("merge_trees needs at least one tree")
    return CallTree(_finish_merge(top, n_trees), n_trees=n_trees)


def _add_tree(top: _Acc, tree: CallTree, tree_index: int) -> None:
    stack: list[tuple[CallNode, _Acc]] = [(tree.root, top)]
    while stack:
        node, parent = stack.pop()
        key = (node.function_name, node.file_path, node.line_number)
        acc = parent.children.get(key)
        if acc is None:
            acc = parent.children[key] = _Acc(key)
        acc.add(node, tree_index)
        stack.extend((child, acc) for child in node.children)


def _is_plain_preorder(nodes: Sequence[Mapping[str, Any]]) -> bool:
    """One root first, every parent before its children, times present."""
    seen: set[Any] = set()
    for index, raw in enumerate(nodes):
        parent = raw.get("parent_call_id", seen)  # ``seen`` stands for "missing"
        call_id = raw.get("call_id")
        if (
            (parent is None) != (index == 0)
            or (parent is not None and parent not in seen)
            or call_id is None
            or call_id in seen
            or raw.get("duration") is None
            or raw.get("self_time") is None
        ):
            return False
        seen.add(call_id)
    return bool(nodes)


def _add_node_list(top: _Acc, nodes: Sequence[Mapping[str, Any]], tree_index: int) -> None:
    by_id: dict[Any, _Acc] = {}
    for raw in nodes:
        parent_id = raw["parent_call_id"]
        parent = top if parent_id is None else by_id[parent_id]
        key = (
            str(raw.get("function_name") or "<unknown>"),
            str(raw.get("file_path") or ""),
            int(raw.get("line_number") or 0),
        )
        acc = parent.children.get(key)
        if acc is None:
            acc = parent.children[key] = _Acc(key)
        acc.durations.append(float(raw["duration"]))
        acc.selfs.append(float(raw["self_time"]))
        if acc.last_tree != tree_index:
            acc.count += int(raw.get("count") or 1)
            acc.last_tree = tree_index
        acc.occurrences += int(raw.get("occurrences") or 1)
        if not acc.is_application and raw.get("is_application"):
            acc.is_application = True
        by_id[raw["call_id"]] = acc


def _finish_merge(top: _Acc, n_trees: int) -> CallNode:
    if len(top.children) == 1:
        root = _build(next(iter(top.children.values())))
        stack = [(root, next(iter(top.children.values())))]
    else:
        root = CallNode(ROOT, count=n_trees, occurrences=0)
        stack = [(root, top)]
    while stack:
        node, acc = stack.pop()
        for child_acc in acc.children.values():
            child = _build(child_acc)
            child.parent = node
            node.children.append(child)
            stack.append((child, child_acc))
        node.children.sort(key=lambda c: c.duration, reverse=True)
    if root.function_name == ROOT and root.occurrences == 0:
        parts = [v for c in root.children for v in (c.duration, c.duration_residual)]
        root.duration, root.duration_residual = exact_sum(parts)
    renumber(root)
    return root


def _build(acc: _Acc) -> CallNode:
    function_name, file_path, line_number = acc.key
    duration, duration_residual = exact_sum(acc.durations)
    self_time, self_residual = exact_sum(acc.selfs)
    return CallNode(
        function_name=function_name,
        file_path=file_path,
        line_number=line_number,
        duration=duration,
        self_time=self_time,
        is_application=acc.is_application,
        count=acc.count,
        occurrences=acc.occurrences,
        duration_residual=duration_residual,
        self_residual=self_residual,
    )
