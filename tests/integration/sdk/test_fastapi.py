from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import performance_monitor
import pytest
from performance_monitor.core import profiler as profiler_module
from performance_monitor.core.record import REDACTED
from pyinstrument import Profiler

from .apps import fastapi_app
from .helpers import call_tree, metric_count, stored_records, wait_until


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _get_many(
    app: Any, requests: list[tuple[str, str, dict[str, Any]]]
) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return list(await asyncio.gather(*(client.request(m, p, **kw) for m, p, kw in requests)))


def test_async_and_threadpool_endpoints_are_profiled(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    app = fastapi_app.create_app(sdk_settings, tmp_path / "db.sqlite3")
    headers = {"Authorization": "Bearer s3cret", "X-Api-Key": "k"}
    sync_r, async_r = run(
        _get_many(
            app,
            [("GET", "/sync-users/3?password=pw", {"headers": headers}), ("GET", "/users/4", {})],
        )
    )
    assert sync_r.json() == {"id": 3} and async_r.json() == {"id": 4, "name": "user4"}
    records = {r["route"]: r for r in stored_records(store, project["project_key"], 2)}
    assert set(records) == {"/sync-users/{user_id}", "/users/{user_id}"}
    for route, view in (
        ("/sync-users/{user_id}", "get_user_sync"),
        ("/users/{user_id}", "get_user"),
    ):
        record = records[route]
        assert fastapi_app.SLEEP <= record["total_duration"] < fastapi_app.SLEEP + 0.5
        nodes = call_tree(store, project["project_key"], record["trace_id"])
        names = [n["function_name"] for n in nodes]
        assert view in names, f"{view} missing from the tree of {route}: {names}"
        node = nodes[names.index(view)]
        assert node["is_application"] and node["duration"] >= fastapi_app.SLEEP * 0.8
    sync_record = records["/sync-users/{user_id}"]
    assert sync_record["request_info"]["headers"]["authorization"] == REDACTED
    assert sync_record["request_info"]["headers"]["x-api-key"] == REDACTED
    assert sync_record["request_info"]["query_params"]["password"] == REDACTED
    assert sync_record["environment"]["framework"] == "fastapi"
    assert sync_record["version_info"]["app_version"] == "2.0.0-test"


def test_concurrent_async_requests_get_their_own_sessions(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    app = fastapi_app.create_app(sdk_settings, tmp_path / "db.sqlite3")
    started = time.perf_counter()
    responses = run(_get_many(app, [("GET", f"/users/{i}", {}) for i in range(8)]))
    elapsed = time.perf_counter() - started
    assert [r.json()["id"] for r in responses] == list(range(8))
    assert elapsed < 8 * fastapi_app.SLEEP  # they really overlapped
    records = stored_records(store, project["project_key"], 8)
    assert sorted(r["path"] for r in records) == sorted(f"/users/{i}" for i in range(8))
    assert performance_monitor.stats()["skipped_profiles"] == profiler_module.skipped_profiles
    for record in records:
        nodes = call_tree(store, project["project_key"], record["trace_id"])
        assert sum(1 for n in nodes if n["function_name"] == "get_user") == 1


def test_query_count_in_threadpool_endpoint(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    app = fastapi_app.create_app(sdk_settings, tmp_path / "db.sqlite3")
    (response,) = run(_get_many(app, [("GET", "/items?n=9", {})]))
    assert len(response.json()["items"]) == 9
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["performance_metrics"]["database_metrics"]["query_count"] == 9


def test_background_task_is_not_billed_to_the_request(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    fastapi_app.background_done.clear()
    app = fastapi_app.create_app(sdk_settings, tmp_path / "db.sqlite3")
    (response,) = run(_get_many(app, [("GET", "/with-background", {})]))
    assert (
        response.json() == {"queued": True} and fastapi_app.background_done
    )  # the task ran (0.3 s)
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["total_duration"] < 0.2
    nodes = call_tree(store, project["project_key"], record["trace_id"])
    assert "slow_task" not in [n["function_name"] for n in nodes]


def test_bodies_tracked_truncated_and_redacted(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    settings = {
        **sdk_settings,
        "track_request_body": True,
        "track_response_body": True,
        "max_body_size": 200,
    }
    app = fastapi_app.create_app(settings, tmp_path / "db.sqlite3")
    payload = {"user": "ann", "password": "pw", "note": "x" * 500}
    (response,) = run(_get_many(app, [("POST", "/echo", {"json": payload})]))
    assert response.json()["received"] == payload
    (record,) = stored_records(store, project["project_key"], 1)
    request_body = record["request_info"].get("body", "")
    response_body = record["response_info"].get("body", "")
    assert request_body and len(request_body) <= 200 and "pw" not in request_body
    assert response_body and "resp-secret" not in response_body


def test_user_profiler_already_running_is_left_alone(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    app = fastapi_app.create_app(sdk_settings, tmp_path / "db.sqlite3")
    before = performance_monitor.stats()["skipped_profiles"]

    async def main() -> list[httpx.Response]:
        profiler = Profiler()  # the user's own async-aware profiler, in this context
        profiler.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return [await client.get("/users/1")]
        finally:
            profiler.stop()

    (response,) = run(main())
    assert response.json() == {"id": 1, "name": "user1"}
    assert performance_monitor.stats()["skipped_profiles"] == before + 1
    (record,) = stored_records(store, project["project_key"], 1)
    assert "function_calls" not in record  # measured, but not profiled
    assert wait_until(lambda: metric_count(store, project["project_key"], "/users/{user_id}") == 1)


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/users/7", {}),
    ("GET", "/sync-users/7", {}),
    ("GET", "/items?n=4", {}),
    ("GET", "/stream", {}),
    ("POST", "/upload", {"files": {"file": ("a.txt", b"hello upload body")}}),
    ("POST", "/echo", {"json": {"a": 1}}),
    ("GET", "/missing", {}),
    ("GET", "/boom", {}),
    ("GET", "/teapot", {}),
    ("HEAD", "/users/7", {}),
    ("GET", "/old", {}),
    ("GET", "/old", {"follow_redirects": True}),
]


def _snapshot(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    return response.status_code, dict(response.headers), response.content


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), REQUESTS, ids=[f"{m} {p}" for m, p, _ in REQUESTS]
)
def test_responses_identical_with_and_without_sdk(
    sdk_settings: dict[str, Any], tmp_path: Path, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    bare = fastapi_app.create_app(None, tmp_path / "bare.sqlite3")
    monitored = fastapi_app.create_app(sdk_settings, tmp_path / "monitored.sqlite3")
    (expected,) = run(_get_many(bare, [(method, path, kwargs)]))
    (actual,) = run(_get_many(monitored, [(method, path, kwargs)]))
    assert _snapshot(actual) == _snapshot(expected)


def test_exception_reaches_the_server_unchanged(
    sdk_settings: dict[str, Any], tmp_path: Path
) -> None:
    app = fastapi_app.create_app(sdk_settings, tmp_path / "db.sqlite3")

    async def main() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            await client.get("/boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        run(main())
