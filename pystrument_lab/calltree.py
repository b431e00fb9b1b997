"""The call-tree model: :class:`CallTree` of linked :class:`CallNode` objects.

A record's ``function_calls`` is a flat pre-order list of nodes (see
``docs/data-model.md``). :meth:`CallTree.from_nodes` turns it into a tree and
:meth:`CallTree.to_nodes` turns it back. Around the model:
:mod:`pystrument_lab.treemerge` (an endpoint's aggregate tree),
:mod:`pystrument_lab.treestats` (hot paths, the self-time table),
:mod:`pystrument_lab.treediff` (version A against B) and
:mod:`pystrument_lab.treeformats` (pyinstrument sessions and HTML, speedscope).

Pure Python, no store access: callers load the nodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pystrument_lab.errors import InvalidPerformanceData

__all__ = [
    "OTHER",
    "ROOT",
    "CallNode",
    "CallTree",
    "FrameKey",
    "InvalidCallTree",
    "renumber",
    "walk",
]

#: ``function_name`` of the node that holds time pruned by the SDK.
OTHER = "[other]"
#: ``function_name`` of the synthetic root above trees whose roots differ.
ROOT = "[root]"

#: A frame's identity: (function_name, file_path, line_number).
FrameKey = tuple[str, str, int]


class InvalidCallTree(InvalidPerformanceData):
    """A node list that does not form one tree (bad parent links, no root...)."""


@dataclass(slots=True, eq=False)
class CallNode:
    """One frame of a call tree; in a merged tree, one path from the root.

    ``count`` is how many of the tree's requests contain this path (1 in a
    single record); ``occurrences`` how many source nodes were merged into it.
    """

    function_name: str
    file_path: str = ""
    line_number: int = 0
    duration: float = 0.0
    self_time: float = 0.0
    is_application: bool = False
    count: int = 1
    occurrences: int = 1
    call_id: int = 0
    depth: int = 0
    children: list[CallNode] = field(default_factory=list)
    parent: CallNode | None = field(default=None, repr=False)
    duration_residual: float = 0.0
    self_residual: float = 0.0

    @property
    def key(self) -> FrameKey:
        return (self.function_name, self.file_path, self.line_number)

    @property
    def is_other(self) -> bool:
        return self.function_name == OTHER

    @property
    def location(self) -> str:
        return f"{self.file_path}:{self.line_number}"

    def path(self) -> tuple[FrameKey, ...]:
        """Frame keys from the root down to this node."""
        keys: list[FrameKey] = []
        node: CallNode | None = self
        while node is not None:
            keys.append(node.key)
            node = node.parent
        return tuple(reversed(keys))

    def ancestors(self) -> list[CallNode]:
        """Parents from the root down, excluding this node."""
        chain: list[CallNode] = []
        node = self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]


@dataclass(slots=True)
class CallTree:
    """A rooted call tree; ``n_trees`` is how many requests it aggregates."""

    root: CallNode
    n_trees: int = 1
    # The call_id of the outermost application frame, as the SDK named it (None: unknown).
    application_root: int | None = None

    @property
    def application_node(self) -> CallNode:
        """Where a view opens: the outermost application frame, or the root if none is named."""
        if self.application_root is not None:
            try:
                return self.node(self.application_root)
            except KeyError:
                pass
        return self.root

    @property
    def total(self) -> float:
        return self.root.duration

    def per_request(self, seconds: float) -> float:
        """A time of this tree as a mean per aggregated request."""
        return seconds / self.n_trees

    def walk(self) -> Iterator[CallNode]:
        """Nodes in pre-order (children in their stored order)."""
        return walk(self.root)

    def __len__(self) -> int:
        return sum(1 for _ in self.walk())

    def find(self, function_name: str) -> list[CallNode]:
        """All nodes of a function, in pre-order."""
        return [n for n in self.walk() if n.function_name == function_name]

    def node(self, call_id: int) -> CallNode:
        for candidate in self.walk():
            if candidate.call_id == call_id:
                return candidate
        raise KeyError(call_id)

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[Mapping[str, Any]],
        *,
        n_trees: int = 1,
        application_root: int | None = None,
    ) -> CallTree:
        """Build a tree from a record's flat node list.

        Missing optional fields get defaults (``self_time`` defaults to the
        duration minus the children's; a missing ``parent_call_id`` is
        inferred from ``depth`` in pre-order). Raises :class:`InvalidCallTree`
        when the links do not form exactly one tree.
        """
        return cls(_link(nodes), n_trees=n_trees, application_root=application_root)

    def to_nodes(self) -> list[dict[str, Any]]:
        """The flat pre-order node list of the data model (merged trees add ``count``)."""
        out: list[dict[str, Any]] = []
        for node in self.walk():
            item: dict[str, Any] = {
                "call_id": node.call_id,
                "parent_call_id": None if node.parent is None else node.parent.call_id,
                "function_name": node.function_name,
                "file_path": node.file_path,
                "line_number": node.line_number,
                "duration": node.duration,
                "self_time": node.self_time,
                "depth": node.depth,
                "call_order": _sibling_index(node),
                "is_application": node.is_application,
            }
            if self.n_trees != 1:
                item["count"] = node.count
                item["occurrences"] = node.occurrences
            out.append(item)
        return out


def walk(root: CallNode) -> Iterator[CallNode]:
    """Pre-order traversal without recursion (trees can be deeper than the stack)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _sibling_index(node: CallNode) -> int:
    if node.parent is None:
        return 0
    for index, sibling in enumerate(node.parent.children):
        if sibling is node:
            return index
    raise InvalidCallTree("a node is missing from its parent's children")


def _node_from_mapping(raw: Mapping[str, Any]) -> CallNode:
    return CallNode(
        function_name=str(raw.get("function_name") or "<unknown>"),
        file_path=str(raw.get("file_path") or ""),
        line_number=int(raw.get("line_number") or 0),
        duration=float(raw.get("duration") or 0.0),
        self_time=float(raw.get("self_time") or 0.0),
        is_application=bool(raw.get("is_application", False)),
        count=int(raw.get("count") or 1),
        occurrences=int(raw.get("occurrences") or 1),
    )


def _parent_ids(nodes: Sequence[Mapping[str, Any]], ids: list[int]) -> list[int | None]:
    """Each node's parent id; a missing link is inferred from ``depth`` (pre-order)."""
    parents: list[int | None] = []
    open_path: list[int] = []  # ids of the current root-to-node path, by depth
    for index, raw in enumerate(nodes):
        depth = raw.get("depth")
        if "parent_call_id" in raw:
            value = raw["parent_call_id"]
            parents.append(None if value is None else int(value))
        elif index == 0:
            parents.append(None)
        elif depth is None or not 0 < int(depth) <= len(open_path):
            raise InvalidCallTree(
                f"node {index} has neither parent_call_id nor a usable depth; "
                "send parent_call_id for every node"
            )
        else:
            parents.append(open_path[int(depth) - 1])
        level = int(depth) if depth is not None else len(open_path)
        del open_path[level:]
        open_path.append(ids[index])
    return parents


def _link(nodes: Sequence[Mapping[str, Any]]) -> CallNode:
    if not nodes:
        raise InvalidCallTree("the node list is empty: a call tree needs at least a root")
    ids = [int(raw.get("call_id", index)) for index, raw in enumerate(nodes)]
    if len(set(ids)) != len(ids):
        raise InvalidCallTree("call_id values must be unique within a record")
    parents = _parent_ids(nodes, ids)
    built = {cid: _node_from_mapping(raw) for cid, raw in zip(ids, nodes, strict=True)}
    orders = {
        cid: (int(raw.get("call_order", i)), i)
        for i, (cid, raw) in enumerate(zip(ids, nodes, strict=True))
    }
    roots = [cid for cid, parent in zip(ids, parents, strict=True) if parent is None]
    if len(roots) != 1:
        raise InvalidCallTree(
            f"a call tree has exactly one root (parent_call_id null), found {len(roots)}"
        )
    for cid, parent_id in zip(ids, parents, strict=True):
        node = built[cid]
        node.call_id = cid
        if parent_id is None:
            continue
        parent = built.get(parent_id)
        if parent is None or parent_id == cid:
            raise InvalidCallTree(
                f"node {cid} names parent {parent_id}, which is not in the record"
            )
        node.parent = parent
        parent.children.append(node)
    root = built[roots[0]]
    seen = 0
    for node in walk(root):
        seen += 1
        node.children.sort(key=lambda child: orders[child.call_id])
        node.depth = 0 if node.parent is None else node.parent.depth + 1
    if seen != len(built):
        raise InvalidCallTree("some nodes are not reachable from the root (a parent cycle)")
    _default_self_times(nodes, ids, built)
    return root


def _default_self_times(
    nodes: Sequence[Mapping[str, Any]], ids: list[int], built: dict[int, CallNode]
) -> None:
    for cid, raw in zip(ids, nodes, strict=True):
        if raw.get("self_time") is None:
            node = built[cid]
            node.self_time = max(0.0, node.duration - sum(c.duration for c in node.children))


def renumber(root: CallNode) -> None:
    """Give nodes pre-order ``call_id`` values and set their ``depth``."""
    for call_id, node in enumerate(walk(root)):
        node.call_id = call_id
        node.depth = 0 if node.parent is None else node.parent.depth + 1
