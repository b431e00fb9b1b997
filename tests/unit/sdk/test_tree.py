from __future__ import annotations

import time

import pytest
from performance_monitor.core.tree import (
    OTHER,
    SDK_DIR,
    Node,
    flatten,
    graft,
    session_tree,
    with_thread_sessions,
)
from pyinstrument import Profiler
from pyinstrument.session import Session


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


def _session(records: list[tuple[list[str], float]]) -> Session:
    return Session(
        frame_records=records,  # type: ignore[arg-type]
        start_time=0.0,
        duration=sum(duration for _, duration in records),
        min_interval=0.001,
        max_interval=0.001,
        sample_count=len(records),
        start_call_stack=[],
        target_description="t",
        cpu_time=0.0,
        sys_path=[],
        sys_prefixes=[],
    )


def test_thread_sessions_replace_the_await_they_ran_in() -> None:
    loop = [
        "mw\x00" + SDK_DIR + "/asgi.py\x001",
        "run_in_threadpool\x00/lib/starlette.py\x002",
    ]
    session = _session(
        [
            (loop + ["prepare\x00/app/a.py\x003"], 0.1),
            ([*loop, "[await]"], 0.3),
            ([*loop, "[await]"], 0.2),
        ]
    )
    thread_frames = ["_bootstrap\x00/lib/threading.py\x001", "run\x00" + SDK_DIR + "/asgi.py\x009"]
    thread = _session(
        [(thread_frames + ["endpoint\x00/app/e.py\x004"], 0.35), (thread_frames, 0.05)]
    )
    merged = with_thread_sessions(session, [thread], frozenset({"run_in_threadpool"}))
    records = [
        (stack[-1].split("\x00")[0], round(duration, 9)) for stack, duration in merged.frame_records
    ]
    # the thread's 0.4 s goes where the await was (its first sample), the await keeps 0.1 s
    assert records == [
        ("prepare", 0.1),
        ("endpoint", 0.35),
        ("run", 0.05),
        ("[await]", 0.06),
        ("[await]", 0.04),
    ]
    assert merged.frame_records[1][0] == [*loop, thread_frames[1], "endpoint\x00/app/e.py\x004"]
    assert sum(d for _, d in merged.frame_records) == pytest.approx(session.duration)
    # a thread longer than the await is scaled into it; nothing to merge leaves the session as is
    long_thread = _session([(thread_frames, 1.0)])
    merged = with_thread_sessions(session, [long_thread], frozenset({"run_in_threadpool"}))
    assert [round(d, 9) for _, d in merged.frame_records] == [0.1, 0.5]
    assert with_thread_sessions(session, [], frozenset({"run_in_threadpool"})) is session
