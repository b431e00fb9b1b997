"""Time merging many call trees, as an endpoint's aggregate profile is built.

Generates N realistic request trees (default 10,000 of ~200 nodes each, in the
SDK's flat node format, "[other]" nodes included): every request walks the same
code base template, skipping some branches and varying the durations. Then
times, over several runs: building the trees from node lists
(``CallTree.from_nodes``), ``merge_trees``, the self-time table of the merged
tree and a diff of two merged halves. Prints the median of each.

    .venv/bin/python benchmarks/merge_trees.py [--trees 10000] [--nodes 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pystrument_lab.calltree import OTHER, CallTree
from pystrument_lab.treediff import diff_trees
from pystrument_lab.treemerge import merge_trees
from pystrument_lab.treestats import self_time_table


@dataclass
class Template:
    """A function in the code base and the functions it may call."""

    name: str
    file_path: str
    line: int
    is_application: bool
    mean_self: float
    children: list[Template] = field(default_factory=list)


def code_base(rng: random.Random, size: int) -> Template:
    """A random call graph of ``size`` functions, app code calling libraries."""
    root = Template("dispatch_request", "/srv/app/views.py", 12, True, 2e-4)
    pool = [root]
    for index in range(size - 1):
        parent = rng.choice(pool[-40:] if rng.random() < 0.7 else pool)
        app = parent.is_application and rng.random() < 0.6
        module = f"app/mod{index % 17}.py" if app else f"site-packages/lib{index % 23}/core.py"
        node = Template(
            f"{'handle' if app else 'lib'}_{index}",
            f"/srv/{module}",
            10 + index,
            app,
            rng.lognormvariate(-9, 1.5),
        )
        parent.children.append(node)
        pool.append(node)
    return root


def request_tree(template: Template, rng: random.Random, keep: float) -> list[dict[str, Any]]:
    """One request's flat node list, durations consistent bottom-up."""
    nodes: list[dict[str, Any]] = []

    def visit(item: Template, parent: int | None, depth: int, order: int) -> float:
        call_id = len(nodes)
        self_time = item.mean_self * rng.uniform(0.5, 1.5)
        entry: dict[str, Any] = {
            "call_id": call_id,
            "parent_call_id": parent,
            "function_name": item.name,
            "file_path": item.file_path,
            "line_number": item.line,
            "duration": 0.0,
            "self_time": self_time,
            "depth": depth,
            "call_order": order,
            "is_application": item.is_application,
        }
        nodes.append(entry)
        total = self_time
        position = 0
        for child in item.children:
            if rng.random() < keep:
                total += visit(child, call_id, depth + 1, position)
                position += 1
        if item.children and rng.random() < 0.1:  # time the SDK pruned
            pruned = rng.uniform(1e-5, 1e-3)
            nodes.append(
                {"call_id": len(nodes), "parent_call_id": call_id, "function_name": OTHER,
                 "file_path": "", "line_number": 0, "duration": pruned, "self_time": pruned,
                 "depth": depth + 1, "call_order": position, "is_application": False}
            )  # fmt: skip
            total += pruned
        entry["duration"] = total
        return total

    visit(template, None, 0, 0)
    return nodes


def generate(n_trees: int, n_nodes: int, seed: int = 1) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    keep = 0.95
    template = code_base(rng, int(n_nodes * 1.3))
    return [request_tree(template, rng, keep) for _ in range(n_trees)]


def median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=200, help="target nodes per tree")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    node_lists = generate(args.trees, args.nodes)
    sizes = [len(nodes) for nodes in node_lists]
    print(
        f"{args.trees} trees, {statistics.mean(sizes):.0f} nodes on average "
        f"({sum(sizes):,} nodes), median of {args.runs} runs"
    )
    trees = [CallTree.from_nodes(nodes) for nodes in node_lists]
    merged = merge_trees(trees)
    half = len(trees) // 2
    a, b = merge_trees(trees[:half]), merge_trees(trees[half:])
    self_time_table(merged)  # import polars outside the timing
    per_input = {
        "merge_trees(node lists)": lambda: merge_trees(node_lists),
        "merge_trees(CallTrees)": lambda: merge_trees(trees),
        "CallTree.from_nodes, each": lambda: [CallTree.from_nodes(n) for n in node_lists],
    }
    on_merged = {
        "self_time_table(merged)": lambda: self_time_table(merged),
        "diff_trees(two halves)": lambda: diff_trees(a, b),
    }
    print(f"merged tree: {len(merged)} nodes")
    for name, action in per_input.items():
        seconds = median_seconds(action, args.runs)
        print(f"{name:<28} {seconds:7.3f} s  ({seconds / sum(sizes) * 1e6:.2f} µs per input node)")
    for name, action in on_merged.items():
        print(f"{name:<28} {median_seconds(action, args.runs) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
