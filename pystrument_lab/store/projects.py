"""Projects: create, read, update, delete, and mark activity."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from pystrument_lab.errors import ProjectNameExists, ProjectNotFound
from pystrument_lab.store.schema import Collections, eq, mask, public, utcnow

_PROJECT_FLAGS = ("enabled", "auto_analysis")


def new_project_key() -> str:
    return "pk_" + secrets.token_urlsafe(24)


def _project(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A project as shown, its config flags as booleans (the embedded server
    returns booleans written by ``$set`` as 0/1)."""
    project = public(document)
    config = (project or {}).get("config")
    if isinstance(config, dict):
        project["config"] = {  # type: ignore[index]
            **config,
            **{flag: bool(config[flag]) for flag in _PROJECT_FLAGS if flag in config},
        }
    return project


class ProjectQueries(Collections):
    """The ``projects`` collection: few documents, but read on every ingest call,
    so lookups use ``$eq`` (the unique indexes) too."""

    def create_project(
        self,
        name: str,
        *,
        framework: str = "other",
        description: str = "",
        base_url: str | None = None,
        sampling_rate: float = 0.3,
        enable_ai_analysis: bool = False,
        alert_threshold: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        now = utcnow()
        document = {
            "project_key": new_project_key(),
            "name": name,
            "description": description,
            "framework": framework,
            "base_url": base_url,
            "status": "active",
            "config": {
                "sampling_rate": sampling_rate,
                "enabled": True,
                "auto_analysis": enable_ai_analysis,
                "alert_threshold": {
                    "response_time": 1.0,
                    "error_rate": 0.05,
                    "memory_usage": 512.0,
                    **(alert_threshold or {}),
                },
            },
            "created_at": now,
            "updated_at": now,
            "last_activity": None,
        }
        try:
            self.projects.insert_one(document)
        except DuplicateKeyError as exc:
            raise ProjectNameExists(f"a project named {name!r} already exists") from exc
        return public(document)  # type: ignore[return-value]

    def get_project(self, project_key: str) -> dict[str, Any]:
        document = self.projects.find_one({"project_key": eq(project_key)})
        if document is None:
            raise ProjectNotFound(f"no project with key {mask(project_key)}")
        return _project(document)  # type: ignore[return-value]

    def find_project(self, project_key: str) -> dict[str, Any] | None:
        return _project(self.projects.find_one({"project_key": eq(project_key)}))

    def project_by_name(self, name: str) -> dict[str, Any] | None:
        return _project(self.projects.find_one({"name": eq(name)}))

    def list_projects(
        self, *, page: int = 1, size: int = 20, status: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {} if status is None else {"status": status}
        total = self.projects.count_documents(query)
        cursor = (
            self.projects.find(query)
            .sort("created_at", ASCENDING)
            .skip((page - 1) * size)
            .limit(size)
        )
        return [_project(doc) for doc in cursor], total  # type: ignore[misc]

    def update_project(self, project_key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (top-level fields, or dotted ``config.*`` paths)."""
        if not changes:
            return self.get_project(project_key)
        try:
            document = self.projects.find_one_and_update(
                {"project_key": project_key},
                {"$set": dict(changes), "$currentDate": {"updated_at": True}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError as exc:
            raise ProjectNameExists(
                f"a project named {changes.get('name')!r} already exists"
            ) from exc
        if document is None:
            raise ProjectNotFound(f"no project with key {mask(project_key)}")
        return _project(document)  # type: ignore[return-value]

    def delete_project(self, project_key: str) -> dict[str, int]:
        """Delete a project and everything stored for it."""
        result = self.projects.delete_one({"project_key": project_key})
        if result.deleted_count == 0:
            raise ProjectNotFound(f"no project with key {mask(project_key)}")
        removed = {"projects": 1}
        for collection in (
            self.records,
            self.call_trees,
            self.endpoint_metrics,
            self.project_metrics,
            self.metric_batches,
            self.analyses,
            self.reports,
        ):
            removed[collection.name] = collection.delete_many(
                {"project_key": project_key}
            ).deleted_count
        return removed

    def touch_project(self, project_key: str) -> None:
        """Mark that data was received for the project just now."""
        self.projects.update_one(
            {"project_key": eq(project_key)}, {"$currentDate": {"last_activity": True}}
        )
