"""A call tree as nested HTML disclosures, opened on its hot path.

The endpoint page shows its merged profile this way: the view starts at the
application root (library frames inside calls folded, as in
:class:`~pystrument_lab.treefocus.FocusedView`), the heaviest chain is
expanded down to where the time goes, and every other branch is one click
away. Times are per request. Function names and file paths came from the
monitored app: each goes through :func:`html_text`.
"""

from __future__ import annotations

from pystrument_lab.calltree import CallNode, CallTree
from pystrument_lab.markup import html_text
from pystrument_lab.treefocus import FocusedView, hot_path
from pystrument_lab.widgets.timefmt import format_ms, format_share

__all__ = ["HOT_PATH_STYLE", "MAX_NODES", "hot_path_html"]

#: Rows rendered at most (the flame graph above draws every node).
MAX_NODES = 300

HOT_PATH_STYLE = """
<style>
.hot-path { font-size: 13px; font-family: ui-monospace, Menlo, Consolas, monospace; }
.hot-path details, .hot-path .leaf { margin-left: 1.1em; }
.hot-path > details, .hot-path > .leaf { margin-left: 0; }
.hot-path summary, .hot-path .leaf > .line { padding: 1px 0; cursor: pointer; }
.hot-path .leaf > .line { cursor: default; padding-left: 1.1em; }
.hot-path .time { display: inline-block; min-width: 6.5em; text-align: right; color: #1d3557; }
.hot-path .share { display: inline-block; min-width: 4.5em; text-align: right; color: #6c757d; }
.hot-path .function { margin-left: 0.6em; }
.hot-path .application > .line .function, .hot-path .application > summary .function {
  font-weight: 600; }
.hot-path .hot > summary .time, .hot-path .hot > .line .time { color: #d62828; font-weight: 600; }
.hot-path .where, .hot-path .folded { color: #6c757d; margin-left: 0.8em; }
.hot-path .more { color: #6c757d; margin-left: 1.1em; }
</style>
"""


def _row(tree: CallTree, node: CallNode, view: FocusedView, total: float) -> str:
    folded = view.folded[node.call_id]
    note = (
        f"<span class='folded'>{folded} library frame{'s' if folded != 1 else ''} folded</span>"
        if folded
        else ""
    )
    return (
        f"<span class='time'>{format_ms(tree.per_request(node.duration))}</span>"
        f"<span class='share'>{format_share(node.duration / total if total else 0.0)}</span>"
        f"<code class='function'>{html_text(node.function_name)}</code>"
        f"<span class='where'>{html_text(node.location)}</span>{note}"
    )


def hot_path_html(tree: CallTree, *, max_nodes: int = MAX_NODES) -> str:
    """The tree from its application root, the hot path open, at most ``max_nodes`` rows."""
    view = FocusedView(tree)
    hot = {node.call_id for node in hot_path(view)}
    total = tree.root.duration
    budget = [max_nodes]

    def render(node: CallNode) -> str:
        budget[0] -= 1
        kind = ("hot " if node.call_id in hot else "") + (
            "application" if node.is_application else "library"
        )
        row = _row(tree, node, view, total)
        children = view.children[node.call_id]
        if not children:
            return f"<div class='leaf {kind}' data-call-id='{node.call_id}'><div class='line'>{row}</div></div>"
        inner = []
        for index, child in enumerate(children):
            if budget[0] <= 0:
                rest = len(children) - index
                inner.append(f"<div class='more'>{rest} more (see the flame graph)</div>")
                break
            inner.append(render(child))
        opened = " open" if node.call_id in hot else ""
        return (
            f"<details class='{kind}' data-call-id='{node.call_id}'{opened}>"
            f"<summary>{row}</summary>{''.join(inner)}</details>"
        )

    return f"{HOT_PATH_STYLE}<div class='hot-path'>{render(view.top)}</div>"
