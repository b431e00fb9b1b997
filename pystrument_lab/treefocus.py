"""The application's view of a call tree: where a view opens and which frames it folds.

A stored tree starts with the server's and the framework's frames (ASGI
``__call__`` chains, ``wrapped_app``, ``handle``...) above the user's code,
and every library call goes on through the library's own frames. Like
pyinstrument's HTML view, the focused view

- opens at the *application root*: the node the SDK named
  (``CallTree.application_root``), or, for trees without one (older records,
  merged trees), the shallowest application frame, the heaviest among equals;
- below it shows every application frame and each library frame the
  application called directly (``sqlalchemy.execute`` stays, its internals
  fold into it), and application frames called back from inside a library
  (a template filter) under the nearest shown frame.

``show_all`` gives the whole tree from its root. Times are not changed: a
shown frame's total still includes its folded frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pystrument_lab.calltree import CallNode, CallTree

__all__ = ["FocusedView", "application_root", "hot_path"]


def application_root(tree: CallTree) -> CallNode:
    """Where a view of ``tree`` opens (see the module docs)."""
    if tree.application_root is not None:
        return tree.application_node
    best: CallNode | None = None
    for node in tree.walk():
        if not node.is_application:
            continue
        if best is None or (node.depth, -node.duration) < (best.depth, -best.duration):
            best = node
    return best or tree.root


def _shown(node: CallNode) -> bool:
    return node.is_application or (node.parent is not None and node.parent.is_application)


@dataclass
class FocusedView:
    """The rows a tree view may show: each one's shown parent, children and level.

    ``top`` is the first row; ``children[call_id]`` the shown children of a
    shown node (its folded frames skipped); ``level[call_id]`` the indent;
    ``folded[call_id]`` how many frames between a row and its shown children
    are hidden; ``hidden_above`` how many frames sit above ``top``.
    """

    tree: CallTree
    show_all: bool = False
    top: CallNode = field(init=False)
    children: dict[int, list[CallNode]] = field(init=False, default_factory=dict)
    parent: dict[int, int | None] = field(init=False, default_factory=dict)
    level: dict[int, int] = field(init=False, default_factory=dict)
    folded: dict[int, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.top = self.tree.root if self.show_all else application_root(self.tree)
        self.parent[self.top.call_id] = None
        self.level[self.top.call_id] = 0
        stack = [self.top]
        while stack:
            node = stack.pop()
            kept, hidden = self._shown_children(node)
            self.children[node.call_id] = kept
            self.folded[node.call_id] = hidden
            for child in kept:
                self.parent[child.call_id] = node.call_id
                self.level[child.call_id] = self.level[node.call_id] + 1
            stack.extend(reversed(kept))

    @property
    def hidden_above(self) -> int:
        return self.top.depth

    def _shown_children(self, node: CallNode) -> tuple[list[CallNode], int]:
        if self.show_all:
            return list(node.children), 0
        kept: list[CallNode] = []
        hidden = 0
        pending = list(reversed(node.children))
        while pending:
            child = pending.pop()
            if _shown(child):
                kept.append(child)
            else:
                hidden += 1
                pending.extend(reversed(child.children))
        return kept, hidden

    def __contains__(self, call_id: int) -> bool:
        return call_id in self.level

    def rows(self) -> list[CallNode]:
        """Every row of the view, fully expanded, in pre-order."""
        out: list[CallNode] = []
        stack = [self.top]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(self.children[node.call_id]))
        return out

    def ancestors(self, call_id: int) -> list[int]:
        """The shown ancestors of a row, nearest first."""
        chain: list[int] = []
        parent = self.parent.get(call_id)
        while parent is not None:
            chain.append(parent)
            parent = self.parent.get(parent)
        return chain


def hot_path(view: FocusedView) -> list[CallNode]:
    """The heaviest chain of ``view``: from its top, each time the shown child with the most
    total time, down to a row with no shown children (where the time is spent)."""
    path = [view.top]
    while view.children[path[-1].call_id]:
        path.append(max(view.children[path[-1].call_id], key=lambda node: node.duration))
    return path
