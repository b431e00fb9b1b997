from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from collector.deps import AdminDep, StoreDep
from collector.envelope import Envelope, ok
from collector.schemas.projects import ProjectCreate, ProjectUpdate
from collector.schemas.public import ProjectDeleted, ProjectPublic, ProjectsPublic

router = APIRouter(prefix="/api/v1/projects", tags=["projects"], dependencies=[AdminDep])


@router.post("", summary="Create a project and its SDK key")
def create_project(body: ProjectCreate, store: StoreDep) -> Envelope[ProjectPublic]:
    project = store.create_project(
        body.name,
        framework=body.framework,
        description=body.description,
        base_url=body.base_url,
        sampling_rate=body.sampling_rate,
        enable_ai_analysis=body.enable_ai_analysis,
        alert_threshold=body.alert_threshold.model_dump(exclude_none=True)
        if body.alert_threshold
        else None,
    )
    return ok(project)


@router.get("", summary="List projects")
def list_projects(
    store: StoreDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,  # skip = (page - 1) * size fits int64
    size: Annotated[int, Query(ge=1, le=200)] = 20,
    status: Annotated[str | None, Query(pattern="^(active|inactive|archived)$")] = None,
) -> Envelope[ProjectsPublic]:
    items, total = store.list_projects(page=page, size=size, status=status)
    return ok({"items": items, "total": total, "page": page, "size": size})


@router.get("/{project_key}", summary="One project")
def get_project(project_key: str, store: StoreDep) -> Envelope[ProjectPublic]:
    return ok(store.get_project(project_key))


@router.put("/{project_key}", summary="Update a project (name, status, sampling, thresholds)")
def update_project(
    project_key: str, body: ProjectUpdate, store: StoreDep, request: Request
) -> Envelope[ProjectPublic]:
    project = store.update_project(project_key, body.changes())
    request.app.state.project_cache.forget(project_key)
    return ok(project)


@router.delete("/{project_key}", summary="Delete a project and all its data")
def delete_project(project_key: str, store: StoreDep, request: Request) -> Envelope[ProjectDeleted]:
    removed = store.delete_project(project_key)
    request.app.state.project_cache.forget(project_key)
    return ok({"project_key": project_key, "deleted": removed})
