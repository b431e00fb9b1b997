"""No secret leaks: not into the collector's log, other projects' answers, error messages or the store.

Secrets here are the admin token, the project keys and an LLM key in the
collector's environment. Sensitive request headers and query parameters that
the SDK captures (or that any client sends to the collector) must reach the
store only as ``[Filtered]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import performance_monitor
import pytest
from bson import json_util

from pystrument_lab.store import Store
from tests.integration.sdk.apps import flask_app
from tests.utils.audit import all_routes, assert_envelope
from tests.utils.factories import make_metric, make_record
from tests.utils.sdk_guard import guarded_sdk

from .conftest import LLM_KEY, ProductCollector

SENSITIVE_HEADERS = [
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
    "X-Api-Key",
    "Api-Key",
    "X-Auth-Token",
    "X-Auth",
    "X-CSRF-Token",
    "X-Project-Key",
    "X-Admin-Token",
    "X-Signature",
    "X-Credential",
]
SENSITIVE_PARAMS = [
    "token",
    "access_token",
    "password",
    "pwd",
    "api_key",
    "apikey",
    "api-key",
    "secret",
    "client_secret",
    "session_id",
    "signature",
]


def canary(name: str) -> str:
    return f"canary-{name.lower()}-{uuid.uuid4().hex}"


def dump_database(store: Store) -> str:
    """Every document of every collection, as one searchable text."""
    parts = []
    for name in store.db.list_collection_names():
        for document in store.db[name].find():
            parts.append(json_util.dumps(document, ensure_ascii=False))
    return "\n".join(parts)


def exercise(
    collector: ProductCollector, a: dict[str, Any], b: dict[str, Any]
) -> list[httpx.Response]:
    """Traffic over every kind of route, successes and failures, with every credential."""
    admin = collector.admin_headers
    key_a, key_b = a["project_key"], b["project_key"]
    out = []
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        out.append(client.get("/api/v1/projects", headers=admin))
        for key in (key_a, key_b):
            out.append(client.get(f"/api/v1/projects/{key}", headers=admin))
            out.append(
                client.get(
                    "/api/v1/performance/records", params={"project_key": key}, headers=admin
                )
            )
            out.append(client.get(f"/api/v1/performance/trends/{key}", headers=admin))
            out.append(client.get(f"/api/v1/analysis/history/{key}", headers=admin))
            out.append(client.get("/api/v1/sdk/config", headers={"X-Project-Key": key}))
            out.append(
                client.post(
                    "/api/v1/performance/collect",
                    json=make_record(),
                    headers={"X-Project-Key": key},
                )
            )
            out.append(
                client.post(
                    "/api/v1/performance/metrics",
                    json={"metrics": [make_metric([0.1])]},
                    headers={"X-Project-Key": key},
                )
            )
            # failures that name the key: wrong route use, a truncated key, a bad body
            out.append(client.get("/api/v1/projects", headers={"X-Project-Key": key}))
            out.append(client.get(f"/api/v1/projects/{key[:-1]}", headers=admin))
            out.append(
                client.post(
                    "/api/v1/performance/collect",
                    json={"records": [{}]},
                    headers={"X-Project-Key": key},
                )
            )
            out.append(
                client.post(
                    "/api/v1/performance/collect", content=b"{", headers={"X-Project-Key": key}
                )
            )
            out.append(
                client.put(f"/api/v1/projects/{key}", json={"sampling_rate": 7}, headers=admin)
            )
        out.append(client.get("/api/v1/analysis/config/ai-services", headers=admin))
        out.append(
            client.post("/api/v1/analysis/analyze/nope", json={"service": "openai"}, headers=admin)
        )
        out.append(
            client.get(
                "/api/v1/projects", headers={"Authorization": f"Bearer {collector.admin_token}x"}
            )
        )
        out.append(
            client.get("/api/v1/projects", headers={"X-Admin-Token": collector.admin_token[:-2]})
        )
        out.append(client.get("/api/v1/projects", params={"token": collector.admin_token}))
        out.append(
            client.post(
                "/api/v1/performance/collect",
                json=make_record(),
                headers={"X-Project-Key": key_a + "x"},
            )
        )
        out.append(client.get("/openapi.json"))
        out.append(client.get("/docs"))
        out.append(client.get("/health"))
    return out


@pytest.fixture(scope="module")
def traffic(
    audit_collector: ProductCollector, project_a: dict[str, Any], project_b: dict[str, Any]
) -> list[httpx.Response]:
    responses = exercise(audit_collector, project_a, project_b)
    time.sleep(0.5)  # let the log lines reach the file
    return responses


def secrets_of(collector: ProductCollector, *projects: dict[str, Any]) -> dict[str, str]:
    found = {"admin token": collector.admin_token, "LLM key": LLM_KEY}
    for project in projects:
        found[f"project key of {project['name']}"] = project["project_key"]
    return found


def test_the_log_holds_no_secret(
    traffic: list[httpx.Response],
    audit_collector: ProductCollector,
    project_a: dict[str, Any],
    project_b: dict[str, Any],
) -> None:
    log = audit_collector.log_path.read_text(errors="replace")
    assert "/api/v1/" in log, "the access log is on at the INFO level; nothing was logged"
    for name, secret in secrets_of(audit_collector, project_a, project_b).items():
        assert secret not in log, f"the {name} is in the collector's log"
        assert secret[:-1] not in log, f"a near copy of the {name} is in the collector's log"


def test_no_response_echoes_a_secret(
    traffic: list[httpx.Response],
    audit_collector: ProductCollector,
    project_a: dict[str, Any],
    project_b: dict[str, Any],
) -> None:
    """Only the admin's project listing and a project's own document may carry its key."""
    admin_token = audit_collector.admin_token
    for response in traffic:
        text = response.text
        assert admin_token not in text and admin_token[:-2] not in text, response.request.url
        assert LLM_KEY not in text, response.request.url
        if response.request.url.path.startswith(("/api/", "/health")):
            assert_envelope(response)
        url = str(response.request.url)
        is_project_listing = response.request.url.path == "/api/v1/projects" and response.is_success
        for key in (project_a["project_key"], project_b["project_key"]):
            if key in text and not is_project_listing:
                own_document = response.request.url.path.endswith(key) and response.is_success
                assert own_document, f"{url} answered with a project key: {text[:300]}"
            if not response.is_success:
                assert key not in text and key[:-1] not in text, (
                    f"error message of {url} names a key"
                )


def test_llm_key_shows_only_as_configured(
    traffic: list[httpx.Response], audit_collector: ProductCollector
) -> None:
    (config,) = [r for r in traffic if r.request.url.path.endswith("/ai-services")]
    services = assert_envelope(config)["data"]
    text = json.dumps(services)
    assert LLM_KEY not in text and "sk-canary" not in text
    assert "has_api_key" in text


def test_one_project_never_sees_another(
    audit_collector: ProductCollector,
    audit_store: Store,
    project_a: dict[str, Any],
    project_b: dict[str, Any],
) -> None:
    key_a, key_b = project_a["project_key"], project_b["project_key"]
    marker = uuid.uuid4().hex
    record = make_record(path=f"/b-only/{marker}", route="/b-only/{id}")
    assert (
        httpx.post(
            audit_collector.url + "/api/v1/performance/collect",
            json=record,
            headers={"X-Project-Key": key_b},
        ).json()["code"]
        == 0
    )
    admin = audit_collector.admin_headers
    answers = [
        httpx.get(
            audit_collector.url + "/api/v1/performance/records",
            params={"project_key": key_a, "size": 500},
            headers=admin,
        ),
        httpx.get(
            f"{audit_collector.url}/api/v1/performance/records/{key_a}/{record['trace_id']}",
            headers=admin,
        ),
        httpx.get(
            f"{audit_collector.url}/api/v1/performance/trends/{key_a}",
            params={"time_range": "7d"},
            headers=admin,
        ),
        httpx.get(f"{audit_collector.url}/api/v1/analysis/history/{key_a}", headers=admin),
        httpx.get(audit_collector.url + "/api/v1/sdk/config", headers={"X-Project-Key": key_a}),
    ]
    for answer in answers:
        assert marker not in answer.text and key_b not in answer.text, answer.request.url
    assert assert_envelope(answers[1])["code"] == 20004  # B's trace id is not found under A
    assert audit_store.records.count_documents({"path": f"/b-only/{marker}"}) == 1


def test_sensitive_fields_sent_to_the_collector_never_reach_the_store(
    audit_collector: ProductCollector, audit_store: Store, project_a: dict[str, Any]
) -> None:
    """Any client (not only the SDK) sending secrets in a record: the collector filters them."""
    header_canaries = {name: canary(name) for name in SENSITIVE_HEADERS}
    param_canaries = {name: canary(name) for name in SENSITIVE_PARAMS}
    record = make_record(path="/login")
    record["request_info"]["headers"] = {**header_canaries, "Accept": "visible-accept"}
    record["request_info"]["query_params"] = {**param_canaries, "q": "visible-query"}
    record["tags"] = {"session_token": canary("tag"), "team": "visible-tag"}
    response = httpx.post(
        audit_collector.url + "/api/v1/performance/collect",
        json=record,
        headers={"X-Project-Key": project_a["project_key"]},
    )
    assert assert_envelope(response)["data"]["accepted"] == 1
    stored = audit_store.records.find_one({"trace_id": record["trace_id"]})
    assert stored is not None
    assert stored["request_info"]["headers"]["Accept"] == "visible-accept"
    assert stored["request_info"]["query_params"]["q"] == "visible-query"
    assert stored["tags"]["team"] == "visible-tag"
    everything = dump_database(audit_store)
    leaked = [
        n for n, value in {**header_canaries, **param_canaries}.items() if value in everything
    ]
    assert leaked == [], f"stored unfiltered: {leaked}"
    assert record["tags"]["session_token"] not in everything
    assert audit_collector.admin_token not in everything and LLM_KEY not in everything


@pytest.fixture
def sdk_isolation() -> Iterator[None]:
    with guarded_sdk(close_timeout=2.0):
        yield


def test_sensitive_request_data_captured_by_the_sdk_never_reaches_the_store(
    sdk_isolation: None,
    audit_collector: ProductCollector,
    audit_store: Store,
    project_a: dict[str, Any],
    tmp_path: Path,
) -> None:
    key = project_a["project_key"]
    settings = {
        "project_key": key,
        "api_endpoint": audit_collector.url,
        "sampling_rate": 1.0,
        "batch_timeout": 0.05,
        "remote_config": False,
        "metrics_interval": 0.2,
    }
    app = flask_app.create_app(settings, tmp_path / "db.sqlite3")
    header_canaries = {name: canary(name) for name in SENSITIVE_HEADERS if name != "Set-Cookie"}
    param_canaries = {name: canary(name) for name in SENSITIVE_PARAMS}
    marker = uuid.uuid4().int % 10_000_000
    response = app.test_client().get(
        f"/users/{marker}",
        query_string={**param_canaries, "q": "visible-query"},
        headers={**header_canaries, "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.get_data() == f'{{"id":{marker},"name":"user{marker}"}}\n'.encode()
    response.close()  # a WSGI server consumes and closes the body; the SDK finishes then
    assert performance_monitor.flush(timeout=10)
    stored = audit_store.records.find_one({"project_key": key, "path": f"/users/{marker}"})
    assert stored is not None
    assert stored["request_info"]["query_params"]["q"] == "visible-query"
    everything = dump_database(audit_store)
    leaked = [
        n for n, value in {**header_canaries, **param_canaries}.items() if value in everything
    ]
    assert leaked == [], f"stored unfiltered: {leaked}"


def test_every_route_was_audited() -> None:
    """The secret audit's traffic covers every route family the app serves."""
    families = {
        path.split("/")[3] if path.startswith("/api/") else path for path, _ in all_routes()
    }
    assert families <= {
        "projects",
        "performance",
        "analysis",
        "sdk",
        "/health",
        "/docs",
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/redoc",
    }
