"""Call-tree model: building from node lists, merging, hot paths, self-time table."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from typing import Any

import pytest

from pystrument_lab.calltree import OTHER, ROOT, CallTree, InvalidCallTree
from pystrument_lab.errors import InvalidPerformanceData
from pystrument_lab.treemerge import merge_trees
from pystrument_lab.treestats import function_stats, hot_paths, self_time_table
from tests.utils.tree_specs import SIMPLE, nodes_from_spec, tree

# -- building ------------------------------------------------------------------


def test_from_nodes_links_parents_and_children_in_call_order() -> None:
    t = tree(SIMPLE)
    assert t.root.function_name == "app.handler"
    assert t.root.parent is None
    assert [c.function_name for c in t.root.children] == ["app.load_users", "app.render", OTHER]
    load = t.root.children[0]
    assert [c.function_name for c in load.children] == ["db.execute", "db.fetch"]
    assert all(child.parent is load for child in load.children)
    assert load.children[0].depth == 2
    assert t.root.duration == 3.1875
    assert len(t) == 7
    assert load.children[0].path() == (
        ("app.handler", "/srv/app.py", 21),
        ("app.load_users", "/srv/app.py", 24),
        ("db.execute", "/srv/db.py", 20),
    )


def test_to_nodes_round_trips_a_record() -> None:
    nodes = nodes_from_spec(SIMPLE)
    assert CallTree.from_nodes(nodes).to_nodes() == nodes


def test_children_follow_call_order_not_list_order() -> None:
    nodes = nodes_from_spec(SIMPLE)
    nodes[1]["call_order"], nodes[4]["call_order"] = 1, 0  # swap load_users and render
    t = CallTree.from_nodes(nodes)
    assert [c.function_name for c in t.root.children] == ["app.render", "app.load_users", OTHER]


def test_missing_optional_fields_get_defaults() -> None:
    nodes = [
        {"call_id": 0, "parent_call_id": None, "function_name": "root", "duration": 1.0},
        {"call_id": 1, "parent_call_id": 0, "duration": 0.75},
        {"call_id": 2, "depth": 1, "function_name": "no_link", "duration": 0.125},
    ]
    t = CallTree.from_nodes(nodes)
    assert t.root.self_time == 0.125  # 1.0 - 0.75 - 0.125
    first, second = t.root.children
    assert (first.function_name, first.file_path, first.line_number) == ("<unknown>", "", 0)
    assert first.is_application is False
    assert first.self_time == 0.75
    assert second.parent is t.root  # parent inferred from depth
    assert second.count == 1 and t.n_trees == 1


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([], "empty"),
        (
            [{"call_id": 0, "parent_call_id": None}, {"call_id": 1, "parent_call_id": None}],
            "exactly one root",
        ),
        ([{"call_id": 0, "parent_call_id": None}, {"call_id": 1, "parent_call_id": 7}], "parent 7"),
        ([{"call_id": 0, "parent_call_id": None}, {"call_id": 0, "parent_call_id": 0}], "unique"),
        (
            [
                {"call_id": 0, "parent_call_id": None},
                {"call_id": 1, "parent_call_id": 2},
                {"call_id": 2, "parent_call_id": 1},
            ],
            "not reachable",
        ),
        ([{"call_id": 0, "parent_call_id": None}, {"call_id": 1}], "parent_call_id"),
    ],
)
def test_invalid_parent_links_are_refused(nodes: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(InvalidCallTree, match=message) as info:
        CallTree.from_nodes(nodes)
    assert isinstance(info.value, InvalidPerformanceData)


def test_deep_trees_do_not_hit_the_recursion_limit() -> None:
    depth = sys.getrecursionlimit() + 500
    nodes = [
        {
            "call_id": i,
            "parent_call_id": i - 1 if i else None,
            "function_name": f"f{i}",
            "duration": float(depth - i),
            "self_time": 1.0,
        }
        for i in range(depth)
    ]
    t = CallTree.from_nodes(nodes)
    merged = merge_trees([t, t])
    assert merged.root.duration == 2.0 * depth
    assert merged.to_nodes()[-1]["depth"] == depth - 1


def test_importing_the_model_imports_no_heavy_library() -> None:
    code = (
        "import sys, pystrument_lab.calltree, pystrument_lab.treemerge, pystrument_lab.treestats, "
        "pystrument_lab.treediff, pystrument_lab.treeformats\n"
        "heavy = {'bokeh', 'ipywidgets', 'polars', 'pandas'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- merging -------------------------------------------------------------------


def test_merge_sums_are_exact_for_trees_with_known_totals() -> None:
    # root self time k/8 in tree k, so every sum is exact in binary floating point
    specs = [
        ("app.handler", k / 8, [("app.query", 0.5, [("db.execute", k / 4, [])]), (OTHER, 0.25, [])])
        for k in range(1, 11)
    ]
    trees = [tree(s) for s in specs]
    merged = merge_trees(trees)
    assert merged.n_trees == 10
    assert merged.root.duration == sum(t.root.duration for t in trees) == 55 / 8 + 5 + 55 / 4 + 2.5
    assert merged.root.count == 10
    execute = merged.find("db.execute")[0]
    assert execute.duration == 55 / 4
    assert execute.count == 10
    assert merged.per_request(execute.duration) == 1.375
    other = merged.find(OTHER)[0]
    assert (other.duration, other.count, other.parent) == (2.5, 10, merged.root)
    stats = {s.function: s for s in function_stats(merged)}
    assert stats["app.handler"].self_time == 55 / 8
    assert stats["app.handler"].total_time == merged.root.duration
    assert stats[OTHER].self_time == 2.5


def test_merge_totals_equal_fsum_of_inputs_whatever_the_order() -> None:
    rng = random.Random(7)
    trees = []
    for _ in range(300):
        leaves = [(f"lib.f{j}", rng.uniform(1e-6, 0.05), []) for j in range(rng.randint(1, 6))]
        trees.append(
            tree(("app.view", rng.uniform(0, 0.01), [("app.work", rng.random() / 9, leaves)]))
        )
    merged = merge_trees(trees)
    assert merged.root.duration == math.fsum(t.root.duration for t in trees)
    backwards = merge_trees(reversed(trees))
    assert backwards.root.duration == merged.root.duration
    merged_twice = merge_trees([merge_trees(trees[:100]), merge_trees(trees[100:])])
    assert merged_twice.root.duration == merged.root.duration
    assert merged_twice.n_trees == 300
    for function in ("app.work", "lib.f0", "lib.f3"):
        expected = math.fsum(n.self_time for t in trees for n in t.find(function))
        row = next(s for s in function_stats(merged_twice) if s.function == function)
        assert row.self_time == expected
        assert row.calls == sum(1 for t in trees if t.find(function))


def test_merge_counts_paths_not_functions() -> None:
    a = tree(
        ("app.h", 1.0, [("app.a", 1.0, [("db.q", 1.0, [])]), ("app.b", 1.0, [("db.q", 2.0, [])])])
    )
    b = tree(("app.h", 1.0, [("app.b", 1.0, [("db.q", 4.0, [])])]))
    merged = merge_trees([a, b])
    paths = {n.path()[-2][0] + ">" + n.function_name: n for n in merged.find("db.q")}
    assert paths["app.a>db.q"].duration == 1.0 and paths["app.a>db.q"].count == 1
    assert paths["app.b>db.q"].duration == 6.0 and paths["app.b>db.q"].count == 2
    # children ordered heaviest first in a merged tree
    assert [c.function_name for c in merged.root.children] == ["app.b", "app.a"]
    assert merged.root.call_id == 0 and sorted(n.call_id for n in merged.walk()) == list(range(5))


def test_merge_repeated_sibling_frames_in_one_tree_count_once() -> None:
    t = tree(("app.h", 0.0, [("db.q", 1.0, []), ("db.q", 2.0, [])]))
    merged = merge_trees([t])
    (q,) = merged.root.children
    assert (q.duration, q.count, q.occurrences) == (3.0, 1, 2)


def test_merge_of_different_roots_uses_a_synthetic_root() -> None:
    merged = merge_trees([tree(("app.a", 1.0, [])), tree(("app.b", 2.0, []))])
    assert merged.root.function_name == ROOT
    assert merged.root.duration == 3.0
    assert merged.root.count == 2
    assert [c.function_name for c in merged.root.children] == ["app.b", "app.a"]


def test_merge_of_nothing_is_an_error() -> None:
    with pytest.raises(InvalidCallTree):
        merge_trees([])


def test_merged_tree_round_trips_through_nodes_with_counts() -> None:
    merged = merge_trees([tree(SIMPLE), tree(SIMPLE), tree(("app.handler", 1.0, []))])
    nodes = merged.to_nodes()
    assert nodes[0]["count"] == 3 and nodes[1]["count"] == 2
    again = CallTree.from_nodes(nodes, n_trees=3)
    assert again.to_nodes() == nodes


# -- hot paths and self time ---------------------------------------------------


def test_hot_paths_are_the_heaviest_leaves_first() -> None:
    paths = hot_paths(tree(SIMPLE), 3)
    assert [p.functions for p in paths] == [
        ["app.handler", "app.load_users", "db.execute"],
        ["app.handler", "app.load_users", "db.fetch"],
        ["app.handler", "app.render", "json.dumps"],
    ]
    assert paths[0].time == 1.5
    assert paths[0].share == 1.5 / 3.1875
    assert str(paths[2]) == "app.handler → app.render → json.dumps"
    with_other = hot_paths(tree(SIMPLE), 10, include_other=True)
    assert [p.functions[-1] for p in with_other][-1] == OTHER


def test_hot_paths_per_request_in_a_merged_tree() -> None:
    merged = merge_trees([tree(SIMPLE)] * 4)
    top = hot_paths(merged, 1)[0]
    assert (top.time, top.per_request) == (6.0, 1.5)


def test_self_time_table_values() -> None:
    recursive = tree(
        (
            "app.h",
            0.5,
            [("app.walk", 1.0, [("app.walk", 2.0, [("db.q", 0.5, [])])]), (OTHER, 0.5, [])],
        )
    )
    table = self_time_table(recursive)
    assert table.columns == [
        "function",
        "file",
        "line",
        "self_time",
        "total_time",
        "self_per_request",
        "total_per_request",
        "occurrences",
        "calls",
        "share",
        "total_share",
        "is_application",
    ]
    rows = {row["function"]: row for row in table.to_dicts()}
    assert list(rows) == ["app.walk", OTHER, "app.h", "db.q"]  # self time desc, then name
    walk = rows["app.walk"]
    assert walk["self_time"] == 3.0
    assert walk["total_time"] == 3.5  # the recursive call is not counted twice
    assert walk["occurrences"] == 2
    assert walk["share"] == 3.0 / 4.5
    assert walk["is_application"] is True
    assert rows["db.q"]["is_application"] is False
    assert rows["app.h"]["total_share"] == 1.0
    assert sum(table["share"]) == pytest.approx(1.0)
    assert OTHER not in self_time_table(recursive, include_other=False)["function"].to_list()


def test_self_time_table_pandas_and_empty_schema() -> None:
    frame = self_time_table(tree(SIMPLE), engine="pandas")
    assert type(frame).__module__.startswith("pandas")
    assert frame.iloc[0]["function"] == "db.execute"
    empty = self_time_table(tree((OTHER, 1.0, [])), include_other=False)
    assert empty.height == 0 and empty.schema["line"].is_integer()
    with pytest.raises(ValueError, match="engine"):
        self_time_table(tree(SIMPLE), engine="arrow")  # type: ignore[arg-type]


def test_merging_node_lists_directly_equals_merging_trees() -> None:
    rng = random.Random(3)
    lists = []
    for _ in range(50):
        leaves = [(f"lib.f{j}", rng.uniform(1e-6, 0.05), []) for j in range(rng.randint(1, 4))]
        lists.append(nodes_from_spec(("app.view", rng.random() / 50, [("app.work", 0.01, leaves)])))
    from_lists = merge_trees(lists)
    from_trees = merge_trees(CallTree.from_nodes(nodes) for nodes in lists)
    assert from_lists.n_trees == 50
    assert from_lists.to_nodes() == from_trees.to_nodes()
    irregular = [dict(n) for n in lists[0]]
    del irregular[1]["self_time"]  # not the fast path: built (and defaulted) first
    mixed = merge_trees([irregular, CallTree.from_nodes(lists[1])])
    assert mixed.n_trees == 2
    assert mixed.root.duration == math.fsum([lists[0][0]["duration"], lists[1][0]["duration"]])
    with pytest.raises(InvalidCallTree, match="exactly one root"):
        merge_trees(
            [[{"call_id": 0, "parent_call_id": None}, {"call_id": 1, "parent_call_id": None}]]
        )


def test_sdk_pruned_trees_keep_their_time_in_other_nodes() -> None:
    from performance_monitor.core.tree import flatten, session_tree
    from pyinstrument import Profiler

    def leaf(n: int) -> int:
        return sum(i * i for i in range(n))

    def work() -> int:
        return sum(leaf(2000 + k) for k in range(300))

    profiler = Profiler(interval=0.0005)
    profiler.start()
    work()
    session = profiler.stop()
    root = session_tree(session)
    assert root is not None
    nodes = flatten(root, budget=4)
    assert any(n["function_name"] == OTHER for n in nodes)
    t = CallTree.from_nodes(nodes)
    assert t.to_nodes() == nodes
    for node in t.walk():  # the data model's invariant survives pruning
        assert node.duration == pytest.approx(
            node.self_time + sum(c.duration for c in node.children), abs=1e-9
        )
    merged = merge_trees([nodes, nodes])
    assert merged.root.duration == 2 * t.root.duration
    assert merged.find(OTHER)[0].count == 2
