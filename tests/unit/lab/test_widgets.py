"""Widgets, tested by the data and state they hold."""

from __future__ import annotations

import pytest

from pystrument_lab.calltree import OTHER
from pystrument_lab.treemerge import merge_trees
from pystrument_lab.widgets import CallTreeWidget, TreeViewState, flame_graph, flame_graph_data
from pystrument_lab.widgets.flamegraph import NEUTRAL, OTHER_COLOUR, diff_colour
from pystrument_lab.widgets.timefmt import format_seconds
from tests.utils.tree_specs import SIMPLE, tree

# SIMPLE, pre-order call ids:
# 0 app.handler (3.1875) > 1 app.load_users (2.25) > 2 db.execute (1.5), 3 db.fetch (0.5)
#                        > 4 app.render (0.75) > 5 json.dumps (0.25); 6 [other] (0.0625)


def by_function(data: dict[str, list], function: str) -> dict[str, object]:
    index = data["function"].index(function)
    return {name: values[index] for name, values in data.items()}


# -- flame graph ------------------------------------------------------------------


def test_flame_graph_geometry_of_known_nodes() -> None:
    data = flame_graph_data(tree(SIMPLE))
    assert data["call_id"] == list(range(7))
    root = by_function(data, "app.handler")
    assert (root["x"], root["width"], root["depth"], root["share"]) == (0.0, 3187.5, 0, 1.0)
    fetch = by_function(data, "db.fetch")
    assert (fetch["x"], fetch["width"], fetch["depth"]) == (1500.0, 500.0, 2)  # ms
    assert (fetch["left"], fetch["right"], fetch["bottom"]) == (1500.0, 2000.0, 2)
    render = by_function(data, "app.render")
    assert (render["x"], render["width"], render["depth"]) == (2250.0, 750.0, 1)
    assert by_function(data, "json.dumps")["x"] == 2250.0
    assert by_function(data, OTHER)["x"] == 3000.0
    assert by_function(data, OTHER)["colour"] == OTHER_COLOUR
    assert fetch["location"] == "/srv/db.py:18"
    assert fetch["total_text"] == "500 ms" and fetch["self_text"] == "500 ms"
    assert root["label"] == "app.handler"
    assert by_function(data, OTHER)["label"] == ""  # 2 % of the width: too narrow for a label
    assert "delta" not in data


def test_flame_graph_opens_at_the_application_root_in_ms() -> None:
    served = tree(("uvicorn.run", 0.001, [("starlette.handle", 0.002, [SIMPLE])]))
    data = flame_graph_data(served)
    assert data["function"][0] == "app.handler" and len(data["function"]) == 7
    root = by_function(data, "app.handler")
    assert (root["x"], root["width"], root["depth"]) == (0.0, 3187.5, 0)
    assert root["share"] == pytest.approx(3.1875 / 3.1905)  # of the whole request
    assert root["label"] == "app.handler"
    assert by_function(data, "db.fetch")["depth"] == 2
    plot = flame_graph(served, title="GET /users")
    assert plot.x_range.end == 3187.5
    assert plot.xaxis[0].axis_label.text == (
        "ms, from app.handler (2 outer frames of the server and framework not drawn)"
    )
    every = flame_graph_data(served, show_all=True)
    assert every["function"][:3] == ["uvicorn.run", "starlette.handle", "app.handler"]
    assert by_function(every, "app.handler")["depth"] == 2
    assert flame_graph(served, show_all=True).x_range.end == pytest.approx(3190.5)


def test_flame_graph_of_a_merged_tree_is_per_request() -> None:
    data = flame_graph_data(merge_trees([tree(SIMPLE)] * 4))
    execute = by_function(data, "db.execute")
    assert (execute["width"], execute["total"], execute["count"]) == (1500.0, 1.5, 4)


def test_flame_graph_diff_colours_slower_red_and_faster_blue() -> None:
    before = tree(SIMPLE)
    after = tree(
        (
            "app.handler",
            0.125,
            [
                ("app.load_users", 0.25, [("db.execute", 3.0, []), ("db.fetch", 0.5, [])]),
                ("app.render", 0.25, [("json.dumps", 0.25, [])]),
                (OTHER, 0.0625, []),
            ],
        )
    )
    data = flame_graph_data(after, diff=before)
    execute = by_function(data, "db.execute")
    render = by_function(data, "app.render")
    assert (execute["delta"], execute["self_delta"]) == (1.5, 1.5)
    assert execute["colour"] == diff_colour(1.5, 1.5) == "#cb181d"  # the strongest red
    assert render["self_delta"] == -0.25
    assert render["colour"] == diff_colour(-0.25, 1.5)
    red, blue = int(render["colour"][1:3], 16), int(render["colour"][5:7], 16)
    assert blue > red  # faster: blue
    assert by_function(data, "app.load_users")["colour"] == NEUTRAL  # its own time did not move
    assert by_function(data, "db.fetch")["delta_text"] == "0 s total, 0 s self"
    by_total = flame_graph_data(after, diff=before, colour_by="total")
    assert by_function(by_total, "app.load_users")["colour"] == "#cb181d"


def test_flame_graph_figure_has_the_tools_and_the_data() -> None:
    from bokeh.models import ColumnDataSource, HoverTool, PanTool, ResetTool, WheelZoomTool

    plot = flame_graph(tree(SIMPLE), diff=tree(SIMPLE), title="GET /users")
    assert plot.title.text == "GET /users"
    kinds = {type(tool) for tool in plot.toolbar.tools}
    assert {WheelZoomTool, PanTool, ResetTool, HoverTool} <= kinds
    assert isinstance(plot.toolbar.active_scroll, WheelZoomTool)
    hover = next(t for t in plot.toolbar.tools if isinstance(t, HoverTool))
    assert ("change", "@delta_text") in hover.tooltips
    sources = {r.data_source for r in plot.renderers if isinstance(r.data_source, ColumnDataSource)}
    (source,) = sources
    assert source.data["width"][1] == 2250.0
    assert plot.x_range.end == 3187.5
    assert plot.xaxis[0].axis_label.text == "ms"


@pytest.mark.parametrize("resources", ["cdn", "inline", None])
def test_figure_view_loads_bokehjs_from_the_configured_place(
    resources: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pystrument_lab.magics.display import FigureView
    from pystrument_lab.settings import get_settings

    if resources is None:  # the default: inside the figure, so it draws offline
        monkeypatch.delenv("PYSTRUMENT_BOKEH_RESOURCES", raising=False)
    else:
        monkeypatch.setenv("PYSTRUMENT_BOKEH_RESOURCES", resources)
    get_settings.cache_clear()
    try:
        view = FigureView(flame_graph(tree(SIMPLE), title="GET /users"), "GET /users\n3 nodes")
        bundle = view._repr_mimebundle_()
    finally:
        get_settings.cache_clear()
    assert bundle["text/plain"] == "GET /users\n3 nodes"
    page = bundle["text/html"]
    assert page.startswith('<iframe srcdoc="') and 'title="GET /users"' in page
    assert ("cdn.bokeh.org" in page) is (resources == "cdn")
    assert len(page) > 500_000 if resources != "cdn" else len(page) < 100_000


def test_diff_colour_and_time_format() -> None:
    assert diff_colour(0.0, 1.0) == NEUTRAL
    assert diff_colour(1.0, 0.0) == NEUTRAL
    assert diff_colour(-1.0, 1.0) == "#2171b5"
    assert [format_seconds(v) for v in (2.5, 0.0123, 4.5e-5, 0.0, -0.25)] == [
        "2.5 s", "12.3 ms", "45 µs", "0 s", "-250 ms"
    ]  # fmt: skip


# -- tree widget ------------------------------------------------------------------


def test_tree_state_expand_collapse() -> None:
    state = TreeViewState(tree(SIMPLE))
    assert state.expanded == {0}
    assert state.visible_ids() == [0, 1, 4, 6]
    state.toggle(1)
    assert state.visible_ids() == [0, 1, 2, 3, 4, 6]
    state.toggle(6)  # a leaf does not expand
    assert 6 not in state.expanded
    state.toggle(0)
    assert state.visible_ids() == [0]
    state.expand_all()
    assert state.visible_ids() == list(range(7))
    state.collapse_all()
    assert state.expanded == set()


def test_tree_state_search_filters_to_matches_and_their_callers() -> None:
    state = TreeViewState(tree(SIMPLE))
    assert state.search("DB.") == [2, 3]
    assert state.visible_ids() == [0, 1, 2, 3]  # app.render is filtered out
    assert state.search("render") == [4]
    assert state.visible_ids() == [0, 4]
    state.toggle(4)  # below a match, the user's expansion shows everything
    assert state.visible_ids() == [0, 4, 5]
    assert state.search("nothing") == [] and state.visible_ids() == []
    state.search("")
    assert state.visible_ids() == [0, 1, 4, 5, 6]  # expansion kept across the search


def test_tree_state_details() -> None:
    merged = merge_trees([tree(SIMPLE), tree(SIMPLE), tree(("app.handler", 1.0, []))])
    state = TreeViewState(merged)
    execute = merged.find("db.execute")[0]
    assert state.details() == ""
    text = state.select(execute.call_id)
    assert text.splitlines() == [
        "db.execute",
        "/srv/db.py:20",
        "times are means per request",
        "total: 1 s",
        "self: 1 s",
        f"share: {3.0 / 7.375 * 100:.1f}% of the request, 66.7% of its caller",
        "count: 2 of 3 requests",
    ]


def test_call_tree_widget_clicks_and_search() -> None:
    widget = CallTreeWidget(tree(SIMPLE))
    assert widget.visible_ids() == [0, 1, 4, 6]
    assert len(widget.rows_box.children) == 4
    assert widget.rows[1].toggle.description == "▸"
    widget.rows[1].toggle.click()
    assert widget.expanded == {0, 1}
    assert widget.visible_ids() == [0, 1, 2, 3, 4, 6]
    assert widget.rows[1].toggle.description == "▾"
    assert widget.rows[2].toggle.disabled
    widget.rows[2].name.click()
    assert widget.details_text.startswith("db.execute\n/srv/db.py:20")
    assert "db.execute" in widget.details_view.value
    assert "share: 47.1% of the request" in widget.details_text
    widget.search_box.value = "json"
    assert widget.search_results == [5]
    assert widget.visible_ids() == [0, 4, 5]
    assert widget.rows[5].name.style.button_color is not None
    assert widget.status.value == "1 match(es)"
    widget.search("")
    assert widget.visible_ids() == [0, 1, 2, 3, 4, 6]
    widget.toggle(4)
    assert widget.rows[5].name.style.button_color is None  # highlight cleared when shown again
    widget.collapse_button.click()
    assert widget.visible_ids() == [0]
    widget.expand_button.click()
    assert widget.visible_ids() == list(range(7))


def test_call_tree_widget_caps_rows() -> None:
    widget = CallTreeWidget(tree(SIMPLE), expand_depth=10, max_rows=3)
    assert widget.visible_ids() == [0, 1, 2]
    assert "4 more rows" in widget.status.value
    bars = widget.rows[0].bars.value
    assert "3.19 s (100.0%)" in bars


@pytest.mark.parametrize("name", ["flame_graph", "CallTreeWidget"])
def test_widgets_package_exports_lazily(name: str) -> None:
    import pystrument_lab.widgets as package

    assert callable(getattr(package, name))
    with pytest.raises(AttributeError):
        package.nope  # noqa: B018
