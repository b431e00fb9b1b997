"""Every route of the collector, read from the app object, against every kind of caller.

- anonymous: 10002 everywhere but the service check and the API docs;
- a project key: SDK routes for its own project only; every other route 10003;
- the admin token (either header): every management route works.

A route added later is covered automatically; one that a project key may
call must be added to ``SDK_ROUTES`` on purpose.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from pystrument_lab.store import Store
from tests.utils.audit import PUBLIC_PATHS, all_routes, assert_envelope
from tests.utils.factories import make_metric, make_record

from .conftest import ProductCollector

ROUTES = all_routes()
SDK_ROUTES = {
    ("/api/v1/performance/collect", "POST"),
    ("/api/v1/performance/metrics", "POST"),
    ("/api/v1/sdk/config", "GET"),
}
ADMIN_ROUTES = [r for r in ROUTES if r[0] not in PUBLIC_PATHS and r not in SDK_ROUTES]
PROTECTED = [r for r in ROUTES if r[0] not in PUBLIC_PATHS]


def route_id(route: tuple[str, str]) -> str:
    return f"{route[1]} {route[0]}"


def fill(path: str, project_key: str) -> str:
    """A concrete URL for a path template: the project's key, made-up ids elsewhere."""
    path = path.replace("{project_key}", project_key)
    return re.sub(r"\{[^}]+\}", lambda _: uuid.uuid4().hex[:24], path)


def call(
    collector: ProductCollector,
    route: tuple[str, str],
    headers: dict[str, str],
    project_key: str,
    body: Any = None,
) -> httpx.Response:
    path, method = route
    url = collector.url + fill(path, project_key)
    params = {"project_key": project_key} if "{project_key}" not in path else None
    payload = body if body is not None else ({} if method in ("POST", "PUT") else None)
    return httpx.request(method, url, headers=headers, params=params, json=payload, timeout=30)


def sdk_body(route: tuple[str, str], trace_id: str | None = None) -> Any:
    if route[0].endswith("/collect"):
        return make_record(trace_id=trace_id)
    if route[0].endswith("/metrics"):
        return {"batch_id": uuid.uuid4().hex, "metrics": [make_metric([0.1])]}
    return None


def test_the_route_table_is_what_the_audit_expects() -> None:
    assert len(ROUTES) >= 20
    assert set(ROUTES) >= SDK_ROUTES
    assert {path for path, _ in ROUTES} >= PUBLIC_PATHS


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
def test_anonymous(route: tuple[str, str], audit_collector: ProductCollector) -> None:
    response = call(audit_collector, route, {}, "pk_" + uuid.uuid4().hex, sdk_body(route))
    if route[0] in PUBLIC_PATHS:
        assert response.status_code == 200
        if route[0] == "/health":
            assert assert_envelope(response)["code"] == 0
        return
    body = assert_envelope(response)
    assert (response.status_code, body["code"]) == (401, 10002), body
    if route in SDK_ROUTES and route[1] == "POST":
        # credentials are checked before the body is validated: no oracle for strangers
        invalid = call(audit_collector, route, {}, "pk_x", {"metrics": "x", "records": "x"})
        assert (invalid.status_code, assert_envelope(invalid)["code"]) == (401, 10002)


@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token"},
        {"X-Admin-Token": "wrong-token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
    ],
    ids=["bearer", "x-admin-token", "basic", "empty-bearer"],
)
def test_bad_admin_tokens(
    route: tuple[str, str],
    headers: dict[str, str],
    audit_collector: ProductCollector,
    project_a: dict[str, Any],
) -> None:
    response = call(audit_collector, route, headers, project_a["project_key"], sdk_body(route))
    body = assert_envelope(response)
    assert (response.status_code, body["code"]) == (401, 10002), body
    assert "wrong-token" not in response.text


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
def test_project_key_cannot_use_management_routes(
    route: tuple[str, str],
    audit_collector: ProductCollector,
    project_a: dict[str, Any],
    project_b: dict[str, Any],
) -> None:
    key = project_a["project_key"]
    for target in (project_a["project_key"], project_b["project_key"]):
        response = call(audit_collector, route, {"X-Project-Key": key}, target)
        body = assert_envelope(response)
        assert (response.status_code, body["code"]) == (403, 10003), body
        # as a bearer token the key is just a wrong admin token
        response = call(audit_collector, route, {"Authorization": f"Bearer {key}"}, target)
        assert assert_envelope(response)["code"] == 10002
        assert key not in response.text


@pytest.mark.parametrize("route", sorted(SDK_ROUTES), ids=route_id)
def test_project_key_works_for_its_own_project_only(
    route: tuple[str, str],
    audit_collector: ProductCollector,
    audit_store: Store,
    project_a: dict[str, Any],
    project_b: dict[str, Any],
) -> None:
    key_a, key_b = project_a["project_key"], project_b["project_key"]
    trace_id = uuid.uuid4().hex
    body = sdk_body(route, trace_id)
    if isinstance(body, dict):
        body["project_key"] = key_b  # the header names A: the body cannot redirect the write
    response = call(audit_collector, route, {"X-Project-Key": key_a}, key_b, body)
    answer = assert_envelope(response)
    assert answer["code"] == 0, answer
    assert key_b not in response.text
    if route[0].endswith("/collect"):
        assert answer["data"]["accepted"] == 1
        stored = audit_store.records.find_one({"trace_id": trace_id})
        assert stored is not None and stored["project_key"] == key_a
        assert audit_store.records.count_documents({"project_key": key_b}) == 0
    elif route[0].endswith("/metrics"):
        assert audit_store.endpoint_metrics.count_documents({"project_key": key_b}) == 0
        assert audit_store.metric_batches.count_documents({"batch_id": body["batch_id"]}) == 1
        assert (
            audit_store.metric_batches.find_one({"batch_id": body["batch_id"]})["project_key"]
            == key_a
        )
    else:
        assert answer["data"] == {"enabled": True, "sampling_rate": 0.25}  # A's, not B's 0.75


@pytest.mark.parametrize("route", sorted(SDK_ROUTES), ids=route_id)
def test_sdk_routes_refuse_unknown_and_deleted_keys(
    route: tuple[str, str], audit_collector: ProductCollector
) -> None:
    doomed = audit_collector.create_project("doomed-" + uuid.uuid4().hex[:6])["project_key"]
    httpx.delete(
        f"{audit_collector.url}/api/v1/projects/{doomed}", headers=audit_collector.admin_headers
    )
    for key in ("pk_" + uuid.uuid4().hex, doomed):
        response = call(audit_collector, route, {"X-Project-Key": key}, key, sdk_body(route))
        body = assert_envelope(response)
        assert (response.status_code, body["code"]) == (401, 20003), body
        assert key not in response.text


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
@pytest.mark.parametrize("style", ["bearer", "x-admin-token"])
def test_admin_token_works(
    route: tuple[str, str],
    style: str,
    audit_collector: ProductCollector,
    project_a: dict[str, Any],
) -> None:
    token = audit_collector.admin_token
    headers = (
        {"Authorization": f"Bearer {token}"} if style == "bearer" else {"X-Admin-Token": token}
    )
    key = project_a["project_key"]
    if route[1] == "DELETE":  # delete a project of its own, not the one the other tests use
        key = audit_collector.create_project("to-delete-" + uuid.uuid4().hex[:6])["project_key"]
    body: Any = None
    if route == ("/api/v1/projects", "POST"):
        body = {"name": "created-" + uuid.uuid4().hex[:6]}
    elif route[0].endswith("/batch"):
        body = {"record_ids": [uuid.uuid4().hex], "service": "rules"}
    response = call(audit_collector, route, headers, key, body)
    answer = assert_envelope(response)
    assert answer["code"] not in (10002, 10003), answer
    assert token not in response.text
