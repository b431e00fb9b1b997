"""OpenAPI links: which answer feeds which request.

A created project's key opens the project, its records, trends and
analyses; a listed record opens its detail and its analysis; a queued
analysis opens its result and its task. Clients generated from the schema
and stateful API testers (schemathesis) follow them. They are declared
here, by operation id, and added to the schema FastAPI generates, so the
routes stay plain.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROJECT_KEY = "$response.body#/data/project_key"
FIRST_RECORD = "$response.body#/data/items/0/record_key"

#: source operation id -> {link name: (target operation id, parameters)}
LINKS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "create_project_api_v1_projects_post": {
        "GetProject": (
            "get_project_api_v1_projects__project_key__get",
            {"project_key": PROJECT_KEY},
        ),
        "UpdateProject": (
            "update_project_api_v1_projects__project_key__put",
            {"project_key": PROJECT_KEY},
        ),
        "DeleteProject": (
            "delete_project_api_v1_projects__project_key__delete",
            {"project_key": PROJECT_KEY},
        ),
        "ListRecords": (
            "records_api_v1_performance_records_get",
            {"project_key": PROJECT_KEY},
        ),
        "ProjectTrends": (
            "project_trends_api_v1_performance_trends__project_key__get",
            {"project_key": PROJECT_KEY},
        ),
        "AnalysisHistory": (
            "history_api_v1_analysis_history__project_key__get",
            {"project_key": PROJECT_KEY},
        ),
    },
    "records_api_v1_performance_records_get": {
        "GetRecord": (
            "record_api_v1_performance_records__project_key___record_key__get",
            {"project_key": "$request.query.project_key", "record_key": FIRST_RECORD},
        ),
        "AnalyzeRecord": (
            "analyze_api_v1_analysis_analyze__performance_record_id__post",
            {"performance_record_id": FIRST_RECORD, "project_key": "$request.query.project_key"},
        ),
    },
    "analyze_api_v1_analysis_analyze__performance_record_id__post": {
        "GetAnalysis": (
            "result_api_v1_analysis_result__analysis_id__get",
            {"analysis_id": "$response.body#/data/analysis_id"},
        ),
        "GetTask": (
            "task_status_api_v1_analysis_task_status__task_id__get",
            {"task_id": "$response.body#/data/task_id"},
        ),
    },
}


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every link of :data:`LINKS` on its source's 200 answer.

    A link naming an operation the app does not have (a route renamed) is an
    error here, not a link silently dropped.
    """
    operations = {
        operation["operationId"]: operation
        for methods in schema.get("paths", {}).values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for source, links in LINKS.items():
        missing = ({source} | {target for target, _ in links.values()}) - set(operations)
        if missing:
            raise ValueError(f"OpenAPI links name operations the app lacks: {sorted(missing)}")
        operations[source]["responses"]["200"]["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
        }
    return schema


def install_links(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) carry the links."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
