"""``%pystrument tree``: one request's call tree, or an endpoint's merged tree.

The tree widget (expand, search, details) is the default view; ``--flame``
shows the bokeh flame graph instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument, magic_arguments

from pystrument_lab.magics.args import parse
from pystrument_lab.magics.errors import PystrumentUsageError

if TYPE_CHECKING:
    from pystrument_lab.calltree import CallTree
    from pystrument_lab.magics.magic import Pystrument

__all__ = ["show_tree", "tree", "tree_summary"]


@magic_arguments(name="pystrument tree")
@argument("target", help="a record's trace id, or a project (name or key) with --route")
@argument("--route", help="show the endpoint's merged tree: all its sampled requests in one")
@argument("--version", help="with --route: only requests of this app version")
@argument("--flame", action="store_true", help="a bokeh flame graph instead of the tree widget")
def tree(magic: Pystrument, line: str) -> Any:
    """A call tree: ``tree TRACE_ID`` for one request, ``tree PROJECT --route R`` merged."""
    args = parse(tree, line)
    if args is None:
        return None
    if args.route is None:
        if args.version is not None:
            raise PystrumentUsageError("--version selects requests of an endpoint; add --route")
        record = magic.lab.record(args.target)
        if record.tree is None:
            raise PystrumentUsageError(
                f"record {args.target} has no call tree (it was stored without function_calls)"
            )
        data = record.data
        title = f"{data.get('method')} {data.get('path')} ({record.record_key})"
        return show_tree(magic, record.tree, title=title, flame=args.flame)
    merged = magic.lab.merged_tree(args.target, args.route, app_version=args.version)
    title = f"{args.route}" + (f" in {args.version}" if args.version else "")
    title += f", {merged.n_trees} requests merged (time per request)"
    return show_tree(magic, merged, title=title, flame=args.flame)


def show_tree(magic: Pystrument, call_tree: CallTree, *, title: str, flame: bool) -> Any:
    """The tree widget, or with ``flame`` the flame graph, of ``call_tree``."""
    if flame:
        from pystrument_lab.magics.display import FigureView
        from pystrument_lab.widgets import flame_graph

        figure = flame_graph(call_tree, title=title)
        return FigureView(figure, tree_summary(call_tree, title))
    from pystrument_lab.widgets import CallTreeWidget

    return CallTreeWidget(call_tree, expand_depth=magic.expand_depth)


def tree_summary(call_tree: CallTree, title: str, *, top: int = 5) -> str:
    """Text form of a tree: the title, total time and the functions with most self time."""
    from pystrument_lab.treestats import function_stats
    from pystrument_lab.widgets.timefmt import format_seconds

    total = call_tree.per_request(call_tree.root.duration)
    lines = [title, f"total {format_seconds(total)}; most self time:"]
    for stat in function_stats(call_tree)[:top]:  # by self time, largest first
        lines.append(f"  {format_seconds(stat.self_per_request):>9}  {stat.function}")
    return "\n".join(lines)
