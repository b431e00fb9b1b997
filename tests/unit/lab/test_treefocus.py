"""The application's view of a call tree: opened at the application root, library frames folded."""

from __future__ import annotations

from pystrument_lab.calltree import CallTree
from pystrument_lab.treefocus import FocusedView, application_root
from pystrument_lab.widgets import CallTreeWidget, TreeViewState
from tests.utils.tree_specs import Spec, nodes_from_spec

SERVED: Spec = (
    "uvicorn.run_asgi", 0.001, [
        ("starlette.__call__", 0.001, [
            ("starlette.handle", 0.002, [
                ("shop.view", 0.010, [
                    ("shop.load", 0.004, [
                        ("sqlalchemy.execute", 0.002, [("sqlalchemy._execute_context", 0.03, [])]),
                    ]),
                    ("jinja2.render", 0.003, [
                        ("jinja2.root_render_func", 0.001, [("shop.price_filter", 0.006, [])]),
                    ]),
                ]),
                ("shop.small_view", 0.001, []),
            ]),
        ]),
    ],
)  # fmt: skip


def served(*, named: bool = True) -> CallTree:
    nodes = nodes_from_spec(SERVED, app_prefix="shop")
    root = next(n["call_id"] for n in nodes if n["function_name"] == "shop.view")
    return CallTree.from_nodes(nodes, application_root=root if named else None)


def names(tree: CallTree, ids: list[int]) -> list[str]:
    return [tree.node(cid).function_name for cid in ids]


def test_the_view_opens_at_the_named_root_and_folds_library_internals() -> None:
    tree = served()
    view = FocusedView(tree)
    assert view.top.function_name == "shop.view" and view.hidden_above == 3
    assert [n.function_name for n in view.rows()] == [
        "shop.view", "shop.load", "sqlalchemy.execute", "jinja2.render", "shop.price_filter",
    ]  # fmt: skip
    execute = tree.find("sqlalchemy.execute")[0].call_id
    render = tree.find("jinja2.render")[0].call_id
    assert view.folded[execute] == 1 and view.folded[render] == 1
    price = tree.find("shop.price_filter")[0].call_id
    assert view.level[price] == 2 and view.ancestors(price) == [render, view.top.call_id]


def test_without_a_named_root_the_shallowest_heaviest_application_frame_opens() -> None:
    tree = served(named=False)
    assert application_root(tree).function_name == "shop.view"  # heavier than shop.small_view


def test_show_all_is_the_whole_tree() -> None:
    tree = served()
    view = FocusedView(tree, show_all=True)
    assert (
        view.top is tree.root and len(view.rows()) == len(tree) and sum(view.folded.values()) == 0
    )


def test_tree_state_starts_on_application_code_and_switches_to_every_frame() -> None:
    tree = served()
    state = TreeViewState(tree, expand_depth=1)
    assert names(tree, state.visible_ids()) == ["shop.view", "shop.load", "jinja2.render"]
    assert state.search("execute_context") == []  # folded frames are not rows of this view
    state.search("")
    state.set_show_all(True)
    shown = names(tree, state.visible_ids())
    assert shown[:5] == [
        "uvicorn.run_asgi", "starlette.__call__", "starlette.handle", "shop.view", "shop.load",
    ]  # fmt: skip
    assert state.search("execute_context") == [tree.find("sqlalchemy._execute_context")[0].call_id]
    state.search("")
    state.set_show_all(False)
    assert names(tree, state.visible_ids())[0] == "shop.view"


def test_widget_first_row_is_application_code_and_one_toggle_shows_all() -> None:
    tree = served()
    widget = CallTreeWidget(tree, expand_depth=3)
    first = tree.node(widget.visible_ids()[0])
    assert first.is_application and first.function_name == "shop.view"
    assert "3 server and framework frames above it" in widget.focus_note.value
    assert "2 library frames inside calls" in widget.focus_note.value
    execute = tree.find("sqlalchemy.execute")[0].call_id
    assert "1 frame folded" in widget.rows[execute].bars.value
    widget.show_all_button.value = True
    assert names(tree, widget.visible_ids()[:3]) == [
        "uvicorn.run_asgi", "starlette.__call__", "starlette.handle",
    ]  # fmt: skip
    assert "folded" not in widget.rows[execute].bars.value
    widget.show_all(False)
    assert tree.node(widget.visible_ids()[0]).function_name == "shop.view"
