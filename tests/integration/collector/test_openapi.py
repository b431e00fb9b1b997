"""``/openapi.json`` describes every answer, and the real answers match what it says."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.utils.audit import api_operations, offline_app
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess

DOCUMENT_URI = "urn:pystrument:openapi"


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return offline_app().openapi()


@pytest.mark.parametrize(("path", "method"), api_operations())
def test_every_route_declares_its_envelope(
    document: dict[str, Any], path: str, method: str
) -> None:
    responses = document["paths"][path][method.lower()]["responses"]
    success = _resolve(document, responses["200"]["content"]["application/json"]["schema"])
    assert success["title"].startswith("Envelope["), success["title"]
    assert set(success["properties"]) == {"code", "msg", "data"}
    data = success["properties"]["data"]
    assert data and data != {"title": "Data"}, f"{method} {path}: data is not described"
    described = _resolve(document, data) if "$ref" in data else data
    assert described.get("properties") or described.get("type"), described
    for status in ("4XX", "5XX"):
        error = responses[status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorEnvelope"}
    # Validation errors answer 400 with an envelope (the handler), not FastAPI's 422 shape.
    assert "422" not in responses


def test_the_document_lists_the_api(document: dict[str, Any]) -> None:
    operations = api_operations()
    assert ("/api/v1/performance/collect", "POST") in operations
    assert ("/api/v1/analysis/config/ai-services", "GET") in operations
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert documented == set(operations)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    project = document["components"]["schemas"]["ProjectPublic"]
    assert {"project_key", "name", "status", "config"} <= set(project["required"])


class Conformance:
    """Checks a real answer against the schema ``/openapi.json`` declares for it."""

    def __init__(self, document: dict[str, Any]) -> None:
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self.document = document
        self.checked: list[tuple[str, str, int]] = []

    def check(self, response: httpx.Response, path: str) -> dict[str, Any]:
        method = response.request.method.lower()
        status = str(response.status_code)
        declared = self.document["paths"][path][method]["responses"]
        key = status if status in declared else f"{status[0]}XX"
        pointer = _pointer("paths", path, method, "responses", key, "content", "application/json")
        schema = {"$ref": f"{DOCUMENT_URI}#/{pointer}/schema"}
        body = response.json()
        errors = list(Draft202012Validator(schema, registry=self.registry).iter_errors(body))
        assert errors == [], f"{method} {path} {status}: {[e.message for e in errors[:3]]}"
        self.checked.append((method, path, response.status_code))
        return body  # type: ignore[no-any-return]


def test_real_answers_match_the_declared_schemas(collector: CollectorProcess) -> None:
    live = httpx.get(collector.url + "/openapi.json").json()
    conform = Conformance(live)
    with collector.client(headers=collector.admin_headers) as api:
        health = conform.check(api.get("/health"), "/health")
        assert health["data"]["store"] == "up"

        created = conform.check(
            api.post("/api/v1/projects", json={"name": "conform-" + uuid.uuid4().hex[:6]}),
            "/api/v1/projects",
        )["data"]
        key = created["project_key"]
        # Times keep the store's ISO form with its offset.
        assert created["created_at"].endswith("+00:00")
        listed = conform.check(api.get("/api/v1/projects"), "/api/v1/projects")["data"]
        assert key in {item["project_key"] for item in listed["items"]}
        one = "/api/v1/projects/{project_key}"
        conform.check(api.get(f"/api/v1/projects/{key}"), one)
        updated = conform.check(
            api.put(f"/api/v1/projects/{key}", json={"config": {"sampling_rate": 0.5}}), one
        )
        assert updated["data"]["config"]["sampling_rate"] == 0.5
        missing = conform.check(api.get("/api/v1/projects/pk_missing"), one)
        assert (missing["code"], missing["data"]) == (20001, None)

        sdk = {"X-Project-Key": key}
        record = make_record()
        collected = conform.check(
            api.post("/api/v1/performance/collect", json={"records": [record]}, headers=sdk),
            "/api/v1/performance/collect",
        )["data"]
        assert (collected["accepted"], collected["duplicates"]) == (1, 0)
        metrics = conform.check(
            api.post(
                "/api/v1/performance/metrics",
                json={"batch_id": uuid.uuid4().hex, "metrics": [make_metric([0.1, 0.2])]},
                headers=sdk,
            ),
            "/api/v1/performance/metrics",
        )["data"]
        assert metrics == {"accepted": 1, "duplicate_batch": False}
        config = conform.check(api.get("/api/v1/sdk/config", headers=sdk), "/api/v1/sdk/config")
        assert config["data"] == {"enabled": True, "sampling_rate": 0.5}

        page = conform.check(
            api.get("/api/v1/performance/records", params={"project_key": key}),
            "/api/v1/performance/records",
        )["data"]
        assert [item["trace_id"] for item in page["items"]] == [record["trace_id"]]
        detail = conform.check(
            api.get(f"/api/v1/performance/records/{key}/{record['trace_id']}"),
            "/api/v1/performance/records/{project_key}/{record_key}",
        )["data"]
        assert [n["function_name"] for n in detail["function_calls"]] == ["wsgi_app", "handler"]
        assert detail["request_info"]["route"] == "/api/users/{id}"  # undeclared, kept
        trends = conform.check(
            api.get(f"/api/v1/performance/trends/{key}", params={"time_range": "1h"}),
            "/api/v1/performance/trends/{project_key}",
        )["data"]
        assert (trends["summary"]["count"], trends["summary"]["max"]) == (2, 0.2)

        queued = conform.check(
            api.post(
                f"/api/v1/analysis/analyze/{record['trace_id']}",
                params={"project_key": key},
                json={"service": "rules"},
            ),
            "/api/v1/analysis/analyze/{performance_record_id}",
        )["data"]
        conform.check(
            api.get(f"/api/v1/analysis/result/{queued['analysis_id']}"),
            "/api/v1/analysis/result/{analysis_id}",
        )
        task = conform.check(
            api.get(f"/api/v1/analysis/task-status/{queued['task_id']}"),
            "/api/v1/analysis/task-status/{task_id}",
        )["data"]
        assert task["status"] == "pending"
        history = conform.check(
            api.get(f"/api/v1/analysis/history/{key}"), "/api/v1/analysis/history/{project_key}"
        )["data"]
        assert history["total"] == 1
        batch = conform.check(
            api.post(
                "/api/v1/analysis/batch",
                json={"record_ids": [record["trace_id"], "nope"], "project_key": key},
            ),
            "/api/v1/analysis/batch",
        )["data"]
        # The record is already queued (20006) and "nope" is no record (20004): both skipped.
        skipped = {item["record_id"]: item["code"] for item in batch["skipped"]}
        assert (batch["queued"], skipped) == ([], {record["trace_id"]: 20006, "nope": 20004})
        services = conform.check(
            api.get("/api/v1/analysis/config/ai-services"), "/api/v1/analysis/config/ai-services"
        )["data"]
        assert services["services"][0]["name"] == "rules"

        deleted = conform.check(api.delete(f"/api/v1/projects/{key}"), one)["data"]
        assert deleted["deleted"]["performance_records"] == 1
    assert {(method, path) for method, path, _ in conform.checked} >= {
        (method.lower(), path) for path, method in api_operations()
    }
