from __future__ import annotations

import httpx

from tests.utils.services import CollectorProcess


def test_health_reports_store_up(collector: CollectorProcess) -> None:
    body = httpx.get(collector.url + "/health").json()
    assert body == {
        "code": 0,
        "msg": "success",
        "data": {"status": "ok", "store": "up", "version": "0.1.0"},
    }


def test_openapi_docs_are_served(collector: CollectorProcess) -> None:
    assert httpx.get(collector.url + "/docs").status_code == 200
    paths = httpx.get(collector.url + "/openapi.json").json()["paths"]
    assert "/api/v1/performance/collect" in paths and "/api/v1/projects/{project_key}" in paths


def test_project_crud_round_trip(collector: CollectorProcess) -> None:
    with collector.client(headers=collector.admin_headers) as api:
        created = api.post(
            "/api/v1/projects",
            json={
                "name": "shop",
                "framework": "django",
                "sampling_rate": 25,
                "enable_ai_analysis": True,
                "base_url": "http://shop.local",
                "description": "the shop",
            },
        ).json()
        assert created["code"] == 0
        project = created["data"]
        key = project["project_key"]
        assert key.startswith("pk_") and len(key) > 30
        assert project["config"]["sampling_rate"] == 0.25
        assert project["config"]["auto_analysis"] is True
        assert project["status"] == "active"

        assert api.get(f"/api/v1/projects/{key}").json()["data"]["name"] == "shop"

        updated = api.put(
            f"/api/v1/projects/{key}",
            json={
                "status": "inactive",
                "config": {"sampling_rate": 0.5, "alert_threshold": {"response_time": 2.5}},
            },
        ).json()["data"]
        assert updated["status"] == "inactive"
        assert updated["config"]["sampling_rate"] == 0.5
        assert updated["config"]["alert_threshold"] == {
            "response_time": 2.5,
            "error_rate": 0.05,
            "memory_usage": 512.0,
        }

        deleted = api.delete(f"/api/v1/projects/{key}").json()
        assert deleted["code"] == 0 and deleted["data"]["deleted"]["projects"] == 1
        missing = api.get(f"/api/v1/projects/{key}")
        assert missing.status_code == 404 and missing.json()["code"] == 20001


def test_project_list_paginates(collector: CollectorProcess) -> None:
    for index in range(5):
        collector.create_project(f"p{index}")
    with collector.client(headers=collector.admin_headers) as api:
        page = api.get("/api/v1/projects", params={"page": 2, "size": 2}).json()["data"]
        assert page["total"] == 5 and page["page"] == 2
        assert [item["name"] for item in page["items"]] == ["p2", "p3"]
        last = api.get("/api/v1/projects", params={"page": 3, "size": 2}).json()["data"]
        assert [item["name"] for item in last["items"]] == ["p4"]


def test_project_errors(collector: CollectorProcess) -> None:
    collector.create_project("taken")
    with collector.client(headers=collector.admin_headers) as api:
        duplicate = api.post("/api/v1/projects", json={"name": "taken"})
        assert (duplicate.status_code, duplicate.json()["code"]) == (409, 20002)
        bad = api.post("/api/v1/projects", json={"name": "x", "framework": "rails"})
        assert (bad.status_code, bad.json()["code"]) == (400, 10001)
        assert "framework" in bad.json()["msg"]
        rate = api.post("/api/v1/projects", json={"name": "y", "sampling_rate": 150})
        assert rate.json()["code"] == 10001 and "sampling_rate" in rate.json()["msg"]
        # Found by the stateful fuzz: a boolean was taken as the rate 1.0.
        for body in (
            {"name": "z", "alert_threshold": {"error_rate": True}},
            {"name": "z", "sampling_rate": "0.5"},
        ):
            coerced = api.post("/api/v1/projects", json=body)
            assert (coerced.status_code, coerced.json()["code"]) == (400, 10001), body
        whole = api.post("/api/v1/projects", json={"name": "z", "sampling_rate": 1})
        assert whole.json()["data"]["config"]["sampling_rate"] == 1.0
        unknown = api.put("/api/v1/projects/pk_nope", json={"description": "x"})
        assert (unknown.status_code, unknown.json()["code"]) == (404, 20001)


def test_management_needs_the_admin_token(collector: CollectorProcess, project: dict) -> None:
    anonymous = httpx.get(collector.url + "/api/v1/projects")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 10002)
    wrong = httpx.get(collector.url + "/api/v1/projects", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, 10002)
    with_key = httpx.get(
        collector.url + "/api/v1/projects", headers={"X-Project-Key": project["project_key"]}
    )
    assert (with_key.status_code, with_key.json()["code"]) == (403, 10003)
    header_token = httpx.get(
        collector.url + "/api/v1/projects", headers={"X-Admin-Token": collector.admin_token}
    )
    assert header_token.json()["code"] == 0
    assert collector.admin_token not in wrong.text


def test_unknown_route_is_an_envelope(collector: CollectorProcess) -> None:
    response = httpx.get(collector.url + "/api/v1/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == 10001
