"""Call trees written as nested specs: (function, self time, children).

``nodes_from_spec`` turns a spec into the data model's flat pre-order node
list with durations that add up exactly; ``tree`` builds the CallTree.
"""

from __future__ import annotations

from typing import Any

from pystrument_lab.calltree import OTHER, CallTree

Spec = tuple[str, float, list["Spec"]]  # (function, self time, children)


def nodes_from_spec(spec: Spec, *, app_prefix: str = "app") -> list[dict[str, Any]]:
    """The data model's flat pre-order node list; durations add up exactly."""
    nodes: list[dict[str, Any]] = []

    def visit(item: Spec, parent: int | None, depth: int, order: int) -> float:
        name, self_time, children = item
        index = len(nodes)
        node: dict[str, Any] = {
            "call_id": index,
            "parent_call_id": parent,
            "function_name": name,
            "file_path": "" if name == OTHER else f"/srv/{name.split('.')[0]}.py",
            "line_number": 0 if name == OTHER else 10 + len(name),
            "duration": 0.0,
            "self_time": self_time,
            "depth": depth,
            "call_order": order,
            "is_application": name.startswith(app_prefix),
        }
        nodes.append(node)
        total = self_time + sum(visit(c, index, depth + 1, i) for i, c in enumerate(children))
        node["duration"] = total
        return total

    visit(spec, None, 0, 0)
    return nodes


def tree(spec: Spec) -> CallTree:
    return CallTree.from_nodes(nodes_from_spec(spec))


SIMPLE: Spec = (
    "app.handler",
    0.125,
    [
        ("app.load_users", 0.25, [("db.execute", 1.5, []), ("db.fetch", 0.5, [])]),
        ("app.render", 0.5, [("json.dumps", 0.25, [])]),
        (OTHER, 0.0625, []),
    ],
)
