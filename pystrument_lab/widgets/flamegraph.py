"""A bokeh flame graph of a call tree, with a diff mode.

One box per node: ``x`` is its start offset (children are laid out one after
another from their parent's start), ``width`` its duration and ``depth`` its
row, root at the bottom. Times are per request, so a merged tree reads as
an endpoint's typical request. The notebook and the Panel dashboard draw the
same figure; :func:`flame_graph_data` is its data, testable by value.

Diff mode colours each box by the change of its *self* time per request
(as differential flame graphs do): the function that got slower is red, one
that got faster blue, and its callers, whose totals moved only because of it,
stay neutral. ``colour_by="total"`` colours by the change of total time.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Literal

from pystrument_lab.calltree import CallNode, CallTree
from pystrument_lab.treediff import DiffNode, TreeDiff, diff_trees
from pystrument_lab.widgets.timefmt import format_seconds, format_share

if TYPE_CHECKING:
    from bokeh.plotting import figure as Figure

__all__ = ["NEUTRAL", "OTHER_COLOUR", "diff_colour", "flame_graph", "flame_graph_data"]

APPLICATION_PALETTE = ("#f4a261", "#e9c46a", "#f6bd60", "#f28482", "#f7b267", "#ffcb77")
LIBRARY_PALETTE = ("#8ecae6", "#a8dadc", "#9ec1cf", "#b8c0ff", "#a3c4bc", "#bde0fe")
OTHER_COLOUR = "#d9d9d9"
NEUTRAL = "#e0e0e0"
_SLOWER = ((0xFD, 0xE0, 0xDD), (0xCB, 0x18, 0x1D))  # light → strong red
_FASTER = ((0xDE, 0xEB, 0xF7), (0x21, 0x71, 0xB5))  # light → strong blue
#: Characters that fit across the whole figure; narrower boxes get shorter labels.
LABEL_CHARS = 150

ColourBy = Literal["self", "total"]


def _blend(ends: tuple[tuple[int, int, int], tuple[int, int, int]], t: float) -> str:
    low, high = ends
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(low, high, strict=True))


def diff_colour(delta: float, scale: float) -> str:
    """Red for slower, blue for faster, stronger as ``|delta|`` nears ``scale``."""
    if scale <= 0 or abs(delta) <= scale * 1e-3:
        return NEUTRAL
    strength = min(1.0, abs(delta) / scale)
    return _blend(_SLOWER if delta > 0 else _FASTER, strength)


def _base_colour(node: CallNode) -> str:
    if node.is_other:
        return OTHER_COLOUR
    palette = APPLICATION_PALETTE if node.is_application else LIBRARY_PALETTE
    return palette[zlib.crc32(node.function_name.encode()) % len(palette)]


def _label(name: str, fraction: float) -> str:
    fits = int(fraction * LABEL_CHARS)
    if fits < 4:
        return ""
    return name if len(name) <= fits else name[: fits - 1] + "…"


def _layout(tree: CallTree) -> list[tuple[CallNode, float]]:
    """(node, start offset in the tree's summed seconds), pre-order."""
    placed: list[tuple[CallNode, float]] = []
    stack = [(tree.root, 0.0)]
    while stack:
        node, start = stack.pop()
        placed.append((node, start))
        offsets = []
        for child in node.children:
            offsets.append((child, start))
            start += child.duration
        stack.extend(reversed(offsets))
    return placed


def flame_graph_data(
    tree: CallTree,
    *,
    diff: TreeDiff | CallTree | None = None,
    colour_by: ColourBy = "self",
) -> dict[str, list[Any]]:
    """The figure's ColumnDataSource data, one entry per node in pre-order.

    ``diff`` is a :class:`TreeDiff` whose b side is ``tree``, or a baseline
    tree (then the diff is ``diff_trees(diff, tree)``). Columns: ``call_id``,
    ``function``, ``location``, ``x``, ``width``, ``depth``, ``left``,
    ``right``, ``bottom``, ``top``, ``total``, ``self_time``, ``share``,
    ``count``, ``colour``, ``label``, the display strings ``total_text``,
    ``self_text``, ``share_text``, and in diff mode ``delta``,
    ``self_delta``, ``delta_text``.
    """
    if isinstance(diff, CallTree):
        diff = diff_trees(diff, tree)
    placed = _layout(tree)
    root_total = tree.root.duration
    data: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for node, start in placed:
        x, width = tree.per_request(start), tree.per_request(node.duration)
        share = node.duration / root_total if root_total else 0.0
        row = {
            "call_id": node.call_id,
            "function": node.function_name,
            "location": node.location,
            "x": x,
            "width": width,
            "depth": node.depth,
            "left": x,
            "right": x + width,
            "bottom": node.depth,
            "top": node.depth + 0.95,
            "total": width,
            "self_time": tree.per_request(node.self_time),
            "share": share,
            "count": node.count,
            "colour": _base_colour(node),
            "label": _label(node.function_name, share),
            "total_text": format_seconds(width),
            "self_text": format_seconds(tree.per_request(node.self_time)),
            "share_text": format_share(share),
        }
        for name, value in row.items():
            data[name].append(value)
    if diff is not None:
        _add_diff(data, placed, diff, colour_by)
    return data


_COLUMNS = (
    "call_id", "function", "location", "x", "width", "depth", "left", "right", "bottom",
    "top", "total", "self_time", "share", "count", "colour", "label", "total_text",
    "self_text", "share_text",
)  # fmt: skip


def _add_diff(
    data: dict[str, list[Any]],
    placed: list[tuple[CallNode, float]],
    diff: TreeDiff,
    colour_by: ColourBy,
) -> None:
    matched: list[DiffNode | None] = [diff.lookup(node.path()) for node, _ in placed]
    data["delta"] = [d.delta if d else 0.0 for d in matched]
    data["self_delta"] = [d.self_delta if d else 0.0 for d in matched]
    data["delta_text"] = [
        f"{format_seconds(d.delta)} total, {format_seconds(d.self_delta)} self" if d else "n/a"
        for d in matched
    ]
    key = "self_delta" if colour_by == "self" else "delta"
    candidates = data[key] if colour_by == "self" else data[key][1:]  # the root dwarfs the rest
    scale = max((abs(v) for v in candidates), default=0.0)
    data["colour"] = [diff_colour(v, scale) for v in data[key]]


def flame_graph(
    tree: CallTree,
    *,
    diff: TreeDiff | CallTree | None = None,
    title: str = "Call tree",
    colour_by: ColourBy = "self",
    width: int = 900,
    height: int | None = None,
) -> Figure:
    """A bokeh figure: wheel zoom (horizontal), pan, reset, save, hover details."""
    from bokeh.models import (
        ColumnDataSource,
        HoverTool,
        PanTool,
        Range1d,
        ResetTool,
        SaveTool,
        WheelZoomTool,
    )
    from bokeh.plotting import figure

    data = flame_graph_data(tree, diff=diff, colour_by=colour_by)
    levels = max(data["depth"]) + 1
    source = ColumnDataSource(data)
    wheel = WheelZoomTool(dimensions="width")
    plot = figure(
        title=title,
        width=width,
        height=height or min(900, 90 + 22 * levels),
        x_range=Range1d(start=0, end=tree.per_request(tree.root.duration) or 1.0),
        y_range=Range1d(start=0, end=levels),
        tools=[wheel, PanTool(), ResetTool(), SaveTool()],
        sizing_mode="stretch_width",
    )
    boxes = plot.quad(
        left="left", right="right", bottom="bottom", top="top", source=source,
        fill_color="colour", line_color="white", line_width=0.5,
    )  # fmt: skip
    plot.text(
        x="left", y="bottom", text="label", source=source, x_offset=3, y_offset=-3,
        text_font_size="9pt", text_baseline="bottom", text_color="#222222",
    )  # fmt: skip
    tooltips = [
        ("function", "@function"),
        ("location", "@location"),
        ("total", "@total_text"),
        ("self", "@self_text"),
        ("share", "@share_text"),
        ("requests", "@count"),
    ]
    if diff is not None:
        tooltips.append(("change", "@delta_text"))
    plot.add_tools(HoverTool(renderers=[boxes], tooltips=tooltips))
    plot.toolbar.active_scroll = wheel
    plot.yaxis.visible = False
    plot.ygrid.visible = False
    plot.xaxis.axis_label = "seconds per request" if tree.n_trees > 1 else "seconds"
    return plot
