"""A bokeh flame graph of a call tree, with a diff mode.

One box per node: ``x`` is its start offset (children are laid out one after
another from their parent's start), ``width`` its duration and ``depth`` its
row, the first drawn frame at the bottom. The axis is in milliseconds per
request, so a merged tree reads as an endpoint's typical request.

Like the tree views, the graph opens at the application root
(:func:`~pystrument_lab.treefocus.application_root`): the server's and the
framework's frames above it are not drawn (``show_all=True`` draws them);
everything below it is, library internals included. The notebook and the Panel dashboard draw the
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
from pystrument_lab.treefocus import application_root
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


def _layout(top: CallNode) -> list[tuple[CallNode, float]]:
    """(node, start offset in the tree's summed seconds) of ``top``'s subtree, pre-order."""
    placed: list[tuple[CallNode, float]] = []
    stack = [(top, 0.0)]
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
    show_all: bool = False,
) -> dict[str, list[Any]]:
    """The figure's ColumnDataSource data, one entry per drawn node in pre-order.

    The nodes drawn are the application root's subtree (every node with
    ``show_all``). ``diff`` is a :class:`TreeDiff` whose b side is ``tree``,
    or a baseline tree (then the diff is ``diff_trees(diff, tree)``).
    Columns: ``call_id``, ``function``, ``location``, the geometry in
    milliseconds per request ``x``, ``width``, ``left``, ``right``, the rows
    ``depth``, ``bottom``, ``top`` (0 for the first drawn frame), ``total``
    and ``self_time`` in seconds per request, ``share`` of the whole
    request, ``count``, ``colour``, ``label``, the display strings
    ``total_text``, ``self_text``, ``share_text``, and in diff mode
    ``delta``, ``self_delta``, ``delta_text``.
    """
    if isinstance(diff, CallTree):
        diff = diff_trees(diff, tree)
    first = tree.root if show_all else application_root(tree)
    placed = _layout(first)
    root_total, shown_total = tree.root.duration, first.duration
    data: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for node, start in placed:
        seconds = tree.per_request(node.duration)
        x, width = tree.per_request(start) * 1000, seconds * 1000
        depth = node.depth - first.depth
        share = node.duration / root_total if root_total else 0.0
        row = {
            "call_id": node.call_id,
            "function": node.function_name,
            "location": node.location,
            "x": x,
            "width": width,
            "depth": depth,
            "left": x,
            "right": x + width,
            "bottom": depth,
            "top": depth + 0.95,
            "total": seconds,
            "self_time": tree.per_request(node.self_time),
            "share": share,
            "count": node.count,
            "colour": _base_colour(node),
            "label": _label(node.function_name, node.duration / shown_total if shown_total else 0),
            "total_text": format_seconds(seconds),
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
    show_all: bool = False,
) -> Figure:
    """A bokeh figure from the application root (every frame with ``show_all``): wheel zoom
    (horizontal), pan, reset, save, hover details; the axis in ms per request."""
    from bokeh.models import (
        ColumnDataSource,
        HoverTool,
        PanTool,
        PlainText,
        Range1d,
        ResetTool,
        SaveTool,
        WheelZoomTool,
    )
    from bokeh.plotting import figure

    data = flame_graph_data(tree, diff=diff, colour_by=colour_by, show_all=show_all)
    first = tree.root if show_all else application_root(tree)
    levels = max(data["depth"]) + 1
    source = ColumnDataSource(data)
    wheel = WheelZoomTool(dimensions="width")
    plot = figure(
        title=title,
        width=width,
        height=height or min(900, 90 + 22 * levels),
        x_range=Range1d(start=0, end=tree.per_request(first.duration) * 1000 or 1.0),
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
    label = "ms per request" if tree.n_trees > 1 else "ms"
    if first.depth:
        outer = f"{first.depth} outer frame{'s' if first.depth != 1 else ''}"
        label += f", from {first.function_name} ({outer} of the server and framework not drawn)"
    plot.xaxis.axis_label = PlainText(
        text=label
    )  # the name is the app's: text, never TeX or markup
    return plot
