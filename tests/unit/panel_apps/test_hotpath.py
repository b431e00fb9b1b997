"""The merged profile's HTML tree: opened on the heaviest chain, every name escaped."""

from __future__ import annotations

import re

from panel_apps.hotpath import hot_path_html
from pystrument_lab.calltree import CallTree
from pystrument_lab.treefocus import FocusedView, hot_path
from pystrument_lab.treemerge import merge_trees
from tests.utils.tree_specs import SIMPLE, Spec, nodes_from_spec, tree

SERVED: Spec = (
    "uvicorn.run", 0.001, [
        ("app.view", 0.002, [
            ("app.<img src=x onerror=alert(1)>", 0.004, []),
            ("lib.query", 0.001, [("lib.inner", 0.050, [])]),
        ]),
    ],
)  # fmt: skip


def _opened(html: str) -> list[str]:
    """The function names of the rows of ``<details open>`` elements, in document order."""
    return re.findall(r"<details class='hot [^']*' data-call-id='\d+' open><summary>.*?"
                      r"<code class='function'>(.*?)</code>", html)  # fmt: skip


def test_the_hot_path_follows_the_heaviest_shown_child_from_the_application_root() -> None:
    served = tree(SERVED)
    view = FocusedView(served)
    assert [n.function_name for n in hot_path(view)] == ["app.view", "lib.query"]
    simple = merge_trees([tree(SIMPLE)] * 3)
    assert [n.function_name for n in hot_path(FocusedView(simple))] == [
        "app.handler", "app.load_users", "db.execute",
    ]  # fmt: skip


def test_the_html_opens_the_hot_path_and_escapes_names() -> None:
    html = hot_path_html(tree(SERVED))
    assert _opened(html) == ["app.view"]  # lib.query is hot but a leaf: nothing to open
    assert "<div class='leaf hot library' data-call-id='3'>" in html
    assert "app.&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert "uvicorn.run" not in html  # above the application root
    assert "1 library frame folded" in html  # lib.inner, inside lib.query
    assert "51 ms" in html and "87.9%" in html  # lib.query: 51 of the request's 58 ms


def test_the_html_is_bounded() -> None:
    wide: Spec = ("app.root", 0.001, [(f"app.f{i}", 0.001, []) for i in range(50)])
    html = hot_path_html(CallTree.from_nodes(nodes_from_spec(wide)), max_nodes=10)
    assert html.count("class='leaf") == 9
    assert "41 more (see the flame graph)" in html
