from __future__ import annotations

import time

import pytest
from performance_monitor.core.tree import OTHER, Node, flatten, graft, session_tree
from pyinstrument import Profiler


def leaf(name: str, duration: float) -> Node:
    return Node(name, f"/app/{name}.py", 1, duration, True)


def make_tree() -> Node:
    root = Node("root", "/app/main.py", 1, 1.0, True)
    a = Node("a", "/app/a.py", 2, 0.6, True, [leaf("a1", 0.3), leaf("a2", 0.2), leaf("a3", 0.05)])
    b = Node("b", "/lib/b.py", 3, 0.3, False, [leaf("b1", 0.01), leaf("b2", 0.02)])
    root.children = [a, b, leaf("c", 0.001)]
    return root


def check_contract(nodes: list[dict]) -> None:
    by_id = {n["call_id"]: n for n in nodes}
    assert (
        nodes[0]["call_id"] == 0 and nodes[0]["parent_call_id"] is None and nodes[0]["depth"] == 0
    )
    assert [n["call_id"] for n in nodes] == list(range(len(nodes)))  # pre-order ids
    for node in nodes:
        children = [c for c in nodes if c["parent_call_id"] == node["call_id"]]
        assert [c["call_order"] for c in children] == list(range(len(children)))
        assert all(c["depth"] == node["depth"] + 1 for c in children)
        assert node["self_time"] == pytest.approx(
            node["duration"] - sum(c["duration"] for c in children), abs=1e-9
        )
        assert node["self_time"] >= 0
        if node["parent_call_id"] is not None:
            assert node["parent_call_id"] in by_id and node["parent_call_id"] < node["call_id"]


def test_flatten_full_tree_keeps_everything_in_preorder() -> None:
    nodes = flatten(make_tree(), budget=100)
    assert [n["function_name"] for n in nodes] == [
        "root",
        "a",
        "a1",
        "a2",
        "a3",
        "b",
        "b1",
        "b2",
        "c",
    ]
    check_contract(nodes)
    assert nodes[1]["self_time"] == pytest.approx(0.05)
    assert nodes[5]["is_application"] is False and nodes[5]["file_path"] == "/lib/b.py"


@pytest.mark.parametrize("budget", [2, 3, 4, 5, 6, 7, 8])
def test_pruning_respects_budget_and_times_add_up(budget: int) -> None:
    nodes = flatten(make_tree(), budget=budget)
    assert len(nodes) <= budget
    check_contract(nodes)
    assert nodes[0]["duration"] == 1.0
    others = [n for n in nodes if n["function_name"] == OTHER]
    assert len({n["parent_call_id"] for n in others}) == len(others)  # at most one per parent
    assert sum(n["self_time"] for n in nodes) == pytest.approx(1.0 - 0.0)  # all time accounted


def test_pruning_keeps_heaviest_nodes() -> None:
    names = [n["function_name"] for n in flatten(make_tree(), budget=5)]
    assert names[:3] == ["root", "a", "a1"]
    assert "c" not in names and OTHER in names


def test_graft_moves_await_time_to_the_thread_subtree() -> None:
    parent = Node("run_sync", "", 0, 0.5, False, [Node("[await]", "", 0, 0.4, False)])
    graft(parent, Node("endpoint", "/app/e.py", 1, 0.3, True, [leaf("q", 0.1)]))
    await_node, endpoint = parent.children
    assert await_node.duration == pytest.approx(0.1) and endpoint.function_name == "endpoint"
    check_contract(flatten(parent, 50))


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_real_session_has_the_function_and_consistent_times() -> None:
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    _busy(0.05)
    session = profiler.stop()
    root = session_tree(session)
    assert root is not None
    nodes = flatten(root, 50)
    check_contract(nodes)
    busy = [n for n in nodes if n["function_name"] == "_busy"]
    assert busy and busy[0]["is_application"] is True
    assert busy[0]["duration"] == pytest.approx(0.05, rel=0.4)
    assert busy[0]["file_path"].endswith("test_tree.py")
