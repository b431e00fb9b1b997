"""One line of what a stored record measured, for the identification table's misses.

Application frames are ranked by the time they own: their duration less that
of the nearest application frames below them (so library and wait frames
count for the application frame that called them); ``[await]`` time is
summed under its nearest application ancestor.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def _owned(nodes: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    by_id = {node["call_id"]: node for node in nodes}
    owned: dict[str, float] = defaultdict(float)
    awaited: dict[str, float] = defaultdict(float)

    def owner(node: dict[str, Any]) -> dict[str, Any] | None:
        parent = by_id.get(node.get("parent_call_id"))
        while parent is not None and not parent.get("is_application"):
            parent = by_id.get(parent.get("parent_call_id"))
        return parent

    for node in nodes:
        above = owner(node)
        if node.get("is_application"):
            owned[node["function_name"]] += node["duration"]
            if above is not None:
                owned[above["function_name"]] -= node["duration"]
        elif node["function_name"] == "[await]" and above is not None:
            awaited[above["function_name"]] += node["duration"]
    return owned, awaited


def summarize(record: dict[str, Any], nodes: list[dict[str, Any]]) -> str:
    metrics = record.get("performance_metrics") or {}
    wall = float(metrics.get("total_duration") or 0.0)
    cpu = float(metrics.get("cpu_time") or 0.0)
    parts = [f"wall {wall * 1000:.0f} ms, cpu {cpu * 1000:.0f} ms"]
    if metrics.get("run_queue_time") is not None:
        parts[0] += f", run queue {float(metrics['run_queue_time']) * 1000:.0f} ms"
    database = metrics.get("database_metrics") or {}
    items = (database.get("statements") or {}).get("items") or []
    for item in sorted(items, key=lambda i: -float(i.get("total_duration") or 0))[:2]:
        site = (item.get("call_site") or {}).get("function", "?")
        parts.append(
            f"{item['count']}x {item['statement'][:48]!r} {float(item['total_duration']) * 1000:.0f}"
            f" ms @{site}"
        )
    memory = metrics.get("memory_usage") or {}
    if memory:
        line = f"mem peak {memory.get('peak_memory') or 0:.0f} MB delta {memory.get('memory_delta') or 0:.0f} MB"
        sites = memory.get("allocations") or []
        if sites:
            line += f" top alloc {sites[0]['size'] / 1e6:.0f} MB @{sites[0]['function']}"
        parts.append(line)
    cache = metrics.get("cache_metrics") or {}
    if cache.get("cache_misses") or cache.get("cache_hits"):
        parts.append(
            f"cache {cache.get('cache_hits', 0)} hits {cache.get('cache_misses', 0)} misses"
        )
    owned, awaited = _owned(nodes)
    ranked = sorted(owned.items(), key=lambda item: -item[1])[:3]
    if ranked and wall:
        parts.append(
            "tree: " + ", ".join(f"{name} owns {share / wall:.0%}" for name, share in ranked)
        )
    for name, seconds in sorted(awaited.items(), key=lambda item: -item[1])[:1]:
        if wall:
            parts.append(f"[await] {seconds / wall:.0%} under {name}")
    return "; ".join(parts)
