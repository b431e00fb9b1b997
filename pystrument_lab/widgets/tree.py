"""An ipywidgets call tree: expand/collapse, time bars, search, details.

:class:`TreeViewState` holds what the view shows (expanded nodes, the search
and its matches, the selected node) without any widget, so it can be tested
and reused; :class:`CallTreeWidget` draws it. Times are per request, so a
merged tree reads as an endpoint's typical request.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

import ipywidgets as widgets

from pystrument_lab.calltree import CallNode, CallTree
from pystrument_lab.treefocus import FocusedView
from pystrument_lab.widgets.timefmt import format_seconds, format_share

__all__ = ["CallTreeWidget", "TreeViewState"]

MATCH_COLOUR = "#fff3b0"
BAR_WIDTH_PX = 160


@dataclass
class TreeViewState:
    """Which nodes a call-tree view shows; node identity is ``call_id``.

    The view opens at the application root with library frames folded
    (:class:`~pystrument_lab.treefocus.FocusedView`); ``show_all`` shows the
    whole tree from its root.
    """

    tree: CallTree
    expand_depth: int = 1
    show_all: bool = False
    expanded: set[int] = field(init=False)
    query: str = ""
    matches: list[int] = field(default_factory=list)
    selected: int | None = None

    def __post_init__(self) -> None:
        self.by_id = {node.call_id: node for node in self.tree.walk()}
        self.view = FocusedView(self.tree, show_all=self.show_all)
        self.expanded = {
            cid
            for cid, level in self.view.level.items()
            if self.view.children[cid] and level < self.expand_depth
        }

    def children(self, call_id: int) -> list[CallNode]:
        """The rows below a row when it is expanded."""
        return self.view.children.get(call_id, [])

    def level(self, call_id: int) -> int:
        """A row's indent: its depth in the view."""
        return self.view.level[call_id]

    def set_show_all(self, show_all: bool) -> None:
        """Switch between the application's view and every frame, keeping the opened rows.

        Showing every frame also opens the frames above the application root,
        so the rows opened before are still in sight.
        """
        if show_all == self.show_all:
            return
        focus = self.view.top
        self.show_all = show_all
        self.view = FocusedView(self.tree, show_all=show_all)
        if show_all:
            self.expanded |= {node.call_id for node in focus.ancestors()}
        if self.query:
            self.search(self.query)

    # -- expansion -------------------------------------------------------------

    def toggle(self, call_id: int) -> None:
        if call_id in self.expanded:
            self.expanded.discard(call_id)
        elif self.children(call_id):
            self.expanded.add(call_id)

    def expand_all(self) -> None:
        self.expanded = {cid for cid, kids in self.view.children.items() if kids}

    def collapse_all(self) -> None:
        self.expanded = set()

    # -- search ----------------------------------------------------------------

    def search(self, query: str) -> list[int]:
        """Rows whose function name contains ``query`` (case-insensitive), pre-order."""
        self.query = query.strip()
        needle = self.query.lower()
        self.matches = (
            [n.call_id for n in self.view.rows() if needle in n.function_name.lower()]
            if needle
            else []
        )
        return self.matches

    def _match_ancestors(self) -> set[int]:
        return {a for cid in self.matches for a in self.view.ancestors(cid)}

    # -- what is shown -----------------------------------------------------------

    def visible(self) -> list[CallNode]:
        """Rows in display order.

        Without a search: the top row and the children of expanded rows. With
        one: the matches and their ancestors (opened automatically), and below
        a match whatever the user expanded.
        """
        filtering = bool(self.query)
        keep = set(self.matches)
        ancestors = self._match_ancestors() if filtering else set()
        matched = set(self.matches)
        if filtering and not keep:
            return []
        top = self.view.top
        rows: list[CallNode] = []
        stack: list[tuple[CallNode, bool]] = [(top, top.call_id in matched)]
        while stack:
            node, inside_match = stack.pop()
            rows.append(node)
            opened = node.call_id in self.expanded
            if filtering and not (opened and inside_match) and node.call_id not in ancestors:
                continue
            if not filtering and not opened:
                continue
            shown = [
                (child, inside_match or child.call_id in matched)
                for child in self.children(node.call_id)
                if not filtering
                or child.call_id in keep
                or child.call_id in ancestors
                or (inside_match and opened)
            ]
            stack.extend(reversed(shown))
        return rows

    def visible_ids(self) -> list[int]:
        return [node.call_id for node in self.visible()]

    # -- details -----------------------------------------------------------------

    def select(self, call_id: int) -> str:
        self.selected = call_id
        return self.details()

    def details(self, call_id: int | None = None) -> str:
        """Plain-text details of a node (the selected one by default)."""
        cid = self.selected if call_id is None else call_id
        if cid is None:
            return ""
        node = self.by_id[cid]
        tree = self.tree
        root_total = tree.root.duration
        share = node.duration / root_total if root_total else 0.0
        parent_share = (
            node.duration / node.parent.duration if node.parent and node.parent.duration else 1.0
        )
        lines = [
            node.function_name,
            f"{node.location}{'  (application code)' if node.is_application else ''}",
            f"total: {format_seconds(tree.per_request(node.duration))}",
            f"self: {format_seconds(tree.per_request(node.self_time))}",
            f"share: {format_share(share)} of the request, {format_share(parent_share)} of its caller",
            f"count: {node.count} of {tree.n_trees} request{'s' if tree.n_trees != 1 else ''}",
        ]
        if tree.n_trees > 1:
            lines.insert(2, "times are means per request")
        return "\n".join(lines)


@dataclass
class _Row:
    box: widgets.HBox
    toggle: widgets.Button
    name: widgets.Button
    bars: widgets.HTML


class CallTreeWidget(widgets.VBox):
    """The call tree as rows of (toggle, function, time bars); click a name for details.

    Model state for tests and callers: :attr:`state`, :meth:`visible_ids`,
    :attr:`expanded`, :attr:`search_results`, :attr:`details_text`; rows'
    buttons are in :attr:`rows` by ``call_id``.
    """

    def __init__(self, tree: CallTree, *, expand_depth: int = 1, max_rows: int = 400) -> None:
        self.state = TreeViewState(tree, expand_depth=expand_depth)
        self.max_rows = max_rows
        self.rows: dict[int, _Row] = {}
        self._shown_ids: list[int] = []
        self.search_box = widgets.Text(placeholder="search functions", continuous_update=False)
        self.search_box.observe(self._on_search, names="value")
        self.expand_button = widgets.Button(description="expand all")
        self.collapse_button = widgets.Button(description="collapse all")
        self.expand_button.on_click(lambda _: self._after(self.state.expand_all))
        self.collapse_button.on_click(lambda _: self._after(self.state.collapse_all))
        self.show_all_button = widgets.ToggleButton(
            value=False,
            description="show all frames",
            tooltip="the server's, framework's and libraries' frames too",
        )
        self.show_all_button.observe(self._on_show_all, names="value")
        self.focus_note = widgets.HTML()
        self.status = widgets.HTML()
        self.rows_box = widgets.VBox(layout=widgets.Layout(max_height="520px", overflow="auto"))
        self.details_view = widgets.HTML()
        header = widgets.HBox(
            [
                self.search_box,
                self.expand_button,
                self.collapse_button,
                self.show_all_button,
                self.status,
            ]
        )
        super().__init__([header, self.focus_note, self.rows_box, self.details_view])
        self.refresh()

    # -- model state -------------------------------------------------------------

    @property
    def expanded(self) -> set[int]:
        return set(self.state.expanded)

    @property
    def search_results(self) -> list[int]:
        return list(self.state.matches)

    @property
    def details_text(self) -> str:
        return self.state.details()

    def visible_ids(self) -> list[int]:
        """``call_id`` of the rows drawn, top to bottom."""
        return list(self._shown_ids)

    # -- actions -----------------------------------------------------------------

    def toggle(self, call_id: int) -> None:
        self._after(lambda: self.state.toggle(call_id))

    def show_all(self, show_all: bool = True) -> None:
        self.show_all_button.value = show_all  # observed: switches the view and redraws

    def search(self, query: str) -> None:
        self.search_box.value = query  # observed: runs the search and redraws

    def select(self, call_id: int) -> None:
        self.state.select(call_id)
        text = html.escape(self.state.details())
        self.details_view.value = f"<pre style='margin:4px 0'>{text}</pre>"

    def _on_show_all(self, change: dict[str, object]) -> None:
        self.state.set_show_all(bool(change["new"]))
        self.rows = {}  # indents and folded counts differ between the views
        self.refresh()

    def _on_search(self, change: dict[str, object]) -> None:
        self.state.search(str(change["new"]))
        self.refresh()

    def _after(self, action: Callable[[], object]) -> None:
        action()
        self.refresh()

    # -- drawing -----------------------------------------------------------------

    def refresh(self) -> None:
        nodes = self.state.visible()
        shown = nodes[: self.max_rows]
        matched = set(self.state.matches)
        boxes = []
        for node in shown:
            row = self.rows.get(node.call_id) or self._make_row(node)
            self._update_row(row, node, node.call_id in matched)
            boxes.append(row.box)
        self.rows_box.children = boxes
        self._shown_ids = [node.call_id for node in shown]
        notes = []
        if self.state.query:
            notes.append(f"{len(self.state.matches)} match(es)")
        if len(nodes) > len(shown):
            notes.append(f"{len(nodes) - len(shown)} more rows not shown: collapse or search")
        self.status.value = " · ".join(notes)
        self.focus_note.value = self._focus_note()

    def _focus_note(self) -> str:
        view = self.state.view
        if self.state.show_all:
            return "<small>Every frame, from the server's entry point.</small>"
        above = view.hidden_above
        folded = sum(view.folded.values())
        if not above and not folded:
            return ""
        parts = []
        if above:
            parts.append(f"{above} server and framework frame{'s' if above != 1 else ''} above it")
        if folded:
            parts.append(f"{folded} library frame{'s' if folded != 1 else ''} inside calls")
        return (
            f"<small>Opened at <code>{html.escape(view.top.function_name)}</code>, the "
            f"application's outermost frame; folded: {', '.join(parts)} "
            "(<i>show all frames</i> shows them).</small>"
        )

    def _make_row(self, node: CallNode) -> _Row:
        level = self.state.level(node.call_id)
        indent = widgets.Layout(width="2.2em", margin=f"0 0 0 {level * 14}px", padding="0")
        toggle = widgets.Button(layout=indent)
        name = widgets.Button(
            description=node.function_name,
            tooltip=node.location,
            layout=widgets.Layout(width="auto", max_width="420px"),
        )
        bars = widgets.HTML(value=self._bars(node))
        toggle.on_click(lambda _: self.toggle(node.call_id))
        name.on_click(lambda _: self.select(node.call_id))
        box = widgets.HBox([toggle, name, bars])
        row = self.rows[node.call_id] = _Row(box, toggle, name, bars)
        return row

    def _update_row(self, row: _Row, node: CallNode, is_match: bool) -> None:
        children = self.state.children(node.call_id)
        if children:
            row.toggle.description = "▾" if node.call_id in self.state.expanded else "▸"
        row.toggle.disabled = not children
        row.name.style.button_color = MATCH_COLOUR if is_match else None
        row.name.style.font_weight = "bold" if is_match else ""

    def _bars(self, node: CallNode) -> str:
        tree = self.state.tree
        root_total = tree.root.duration or 1.0
        total_px = round(BAR_WIDTH_PX * node.duration / root_total)
        self_px = round(BAR_WIDTH_PX * max(node.self_time, 0.0) / root_total)
        colour = "#e76f51" if node.is_application else "#457b9d"
        return (
            f"<div style='display:flex;align-items:center;gap:6px;font-size:12px'>"
            f"<div style='position:relative;width:{BAR_WIDTH_PX}px;height:10px;background:#eee'>"
            f"<div style='position:absolute;height:10px;width:{total_px}px;background:{colour};"
            f"opacity:0.35'></div>"
            f"<div style='position:absolute;height:10px;width:{self_px}px;background:{colour}'></div>"
            f"</div><span>{format_seconds(tree.per_request(node.duration))} "
            f"({format_share(node.duration / root_total)}), self "
            f"{format_seconds(tree.per_request(node.self_time))}{self._folded(node)}</span></div>"
        )

    def _folded(self, node: CallNode) -> str:
        folded = self.state.view.folded.get(node.call_id, 0)
        if not folded:
            return ""
        return (
            f" <span style='color:#888'>· {folded} frame{'s' if folded != 1 else ''} folded</span>"
        )
