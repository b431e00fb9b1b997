"""Diffing call trees: version A against version B."""

from __future__ import annotations

from pystrument_lab.calltree import ROOT, CallTree
from pystrument_lab.treediff import diff_trees, function_change_rows, function_changes
from pystrument_lab.treemerge import merge_trees
from tests.utils.tree_specs import Spec, tree


def version(serialize_self: float, query_self: float, *, cache: bool = True) -> Spec:
    children: list[Spec] = [
        ("app.load_orders", 0.25, [("db.execute", query_self, [])]),
        ("app.serialize", serialize_self, [("json.dumps", 0.5, [])]),
    ]
    if cache:
        children.append(("cache.get", 0.125, []))
    return ("app.view", 0.25, children)


def releases() -> tuple[CallTree, CallTree]:
    """A: 4 requests; B: 2 requests in which app.serialize's own time grew."""
    a = merge_trees([tree(version(1.0, 2.0)) for _ in range(4)])
    b = merge_trees([tree(version(3.0, 2.0, cache=False)) for _ in range(2)])
    return a, b


def test_diff_aligns_paths_and_normalises_per_request() -> None:
    a, b = releases()
    diff = diff_trees(a, b)
    assert (diff.n_a, diff.n_b) == (4, 2)
    root = diff.root
    assert (root.time_a, root.time_b) == (4.125, 6.0)  # per request, not 16.5 vs 12.0
    assert root.delta == 1.875
    serialize = diff.find("app.serialize")[0]
    assert (serialize.time_a, serialize.time_b, serialize.delta) == (1.5, 3.5, 2.0)
    assert (serialize.self_a, serialize.self_b, serialize.self_delta) == (1.0, 3.0, 2.0)
    assert serialize.share_a == 1.5 / 4.125 and serialize.share_b == 3.5 / 6.0
    assert (serialize.count_a, serialize.count_b) == (4, 2)
    assert serialize.status == "changed"
    query = diff.find("db.execute")[0]
    assert query.delta == 0.0
    cache = diff.find("cache.get")[0]
    assert (cache.status, cache.time_a, cache.time_b, cache.count_b) == ("removed", 0.125, 0.0, 0)
    assert [c.function_name for c in root.children] == [
        "app.serialize",
        "app.load_orders",
        "cache.get",
    ]
    assert diff.lookup((root.key, serialize.key)) is serialize
    assert diff.lookup((root.key, ("nope", "", 0))) is None


def test_function_changes_rank_the_function_that_got_slower_first() -> None:
    a, b = releases()
    rows = function_change_rows(a, b)
    assert rows[0].function == "app.serialize"
    assert (rows[0].self_a, rows[0].self_b, rows[0].self_delta) == (1.0, 3.0, 2.0)
    # the root's *total* grew most, but its self time did not move
    view = next(r for r in rows if r.function == "app.view")
    assert view.total_delta == 1.875 and view.self_delta == 0.0
    assert rows[-1].function == "cache.get" and rows[-1].status == "removed"
    table = function_changes(a, b)
    assert table["function"][0] == "app.serialize"
    assert table.columns[:6] == ["function", "file", "line", "self_a", "self_b", "self_delta"]
    pandas_table = function_changes(a, b, engine="pandas")
    assert pandas_table.iloc[0]["self_delta"] == 2.0


def test_added_functions_and_single_records() -> None:
    a = tree(("app.view", 1.0, []))
    b = tree(("app.view", 1.0, [("app.new_helper", 0.5, [])]))
    diff = diff_trees(a, b)
    (helper,) = diff.root.children
    assert (helper.status, helper.time_a, helper.time_b, helper.share_b) == (
        "added",
        0.0,
        0.5,
        0.5 / 1.5,
    )
    assert function_change_rows(a, b)[0].function == "app.new_helper"


def test_diff_of_different_roots_compares_them_side_by_side() -> None:
    diff = diff_trees(tree(("app.old", 1.0, [])), tree(("app.new", 2.0, [])))
    assert diff.root.function_name == ROOT
    assert {(c.function_name, c.status) for c in diff.root.children} == {
        ("app.old", "removed"),
        ("app.new", "added"),
    }
    assert (diff.root.time_a, diff.root.time_b) == (1.0, 2.0)
