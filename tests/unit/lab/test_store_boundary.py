"""Only ``pystrument_lab/store/`` talks to MongoDB: no pymongo/bson import, no
collection access or driver call anywhere else in the shipped code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("collector", "panel_apps", "pystrument_lab")
OWNER = ROOT / "pystrument_lab" / "store"
DRIVERS = {"pymongo", "bson", "motor", "gridfs"}
HANDLES = {
    "db",
    "client",
    "projects",
    "records",
    "call_trees",
    "endpoint_metrics",
    "project_metrics",
    "metric_batches",
    "analyses",
    "reports",
    "scheduler_state",
    "job_runs",
}
DRIVER_METHODS = {
    "aggregate",
    "bulk_write",
    "command",
    "count_documents",
    "create_index",
    "create_indexes",
    "delete_many",
    "delete_one",
    "distinct",
    "estimated_document_count",
    "find",
    "find_one",
    "find_one_and_delete",
    "find_one_and_replace",
    "find_one_and_update",
    "insert_many",
    "insert_one",
    "replace_one",
    "update_many",
    "update_one",
    "watch",
}


def _names_store(node: ast.expr) -> bool:
    """Whether an expression is a store handle: ``store``, ``self.store``, ``lab.store``…"""
    if isinstance(node, ast.Name):
        return "store" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "store" in node.attr.lower()
    return False


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Each MongoDB access in ``source`` outside the store package, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in DRIVERS
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DRIVERS:
            found.append(f"{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Attribute) and node.attr in HANDLES and _names_store(node.value):
            found.append(f"{node.lineno}: collection handle .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in DRIVER_METHODS
            and isinstance(node.func.value, (ast.Attribute, ast.Subscript))
            and _collection_like(node.func.value)
        ):
            found.append(f"{node.lineno}: driver call .{node.func.attr}()")
    return found


def _collection_like(node: ast.expr) -> bool:
    if isinstance(node, ast.Subscript):  # db["name"]
        return _collection_like(node.value) if isinstance(node.value, ast.Attribute) else True
    return isinstance(node, ast.Attribute) and node.attr in HANDLES


def test_no_mongodb_access_outside_the_store_package() -> None:
    offenders = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if OWNER in path.parents:
                continue
            found = violations(path.read_text(encoding="utf-8"), str(path))
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_check_sees_each_kind_of_access() -> None:
    source = """
import pymongo
from bson import ObjectId
from pymongo.errors import PyMongoError

def tidy(store, lab):
    store.analyses.insert_one({})
    lab.store.db["job_runs"].delete_many({})
    text.find("x")
"""
    assert sorted(violations(source)) == [
        "2: import pymongo",
        "3: from bson import",
        "4: from pymongo.errors import",
        "7: collection handle .analyses",
        "7: driver call .insert_one()",
        "8: collection handle .db",
        "8: driver call .delete_many()",
    ]
