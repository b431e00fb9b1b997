from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .apps import django_app
from .helpers import call_tree, metric_count, stored_records, wait_until

django_app.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from performance_monitor.core.record import REDACTED  # noqa: E402


def _settings(sdk_settings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {key.upper(): value for key, value in {**sdk_settings, **extra}.items()}


@pytest.fixture
def monitored(sdk_settings: dict[str, Any]) -> Iterator[Client]:
    middleware = [django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware, PERFORMANCE_MONITOR=_settings(sdk_settings)):
        yield Client(raise_request_exception=False)


def test_sampled_request_with_route_duration_tree_and_redaction(
    monitored: Client, store: Any, project: dict[str, Any]
) -> None:
    response = monitored.get(
        "/users/42?api_key=zzz&q=1", HTTP_AUTHORIZATION="Bearer s3cret", HTTP_COOKIE="sid=1"
    )
    assert response.status_code == 200 and response.json() == {"id": 42, "name": "user42"}
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["route"] == "/users/<int:user_id>" and record["path"] == "/users/42"
    assert record["status_code"] == 200
    assert django_app.SLEEP <= record["total_duration"] < django_app.SLEEP + 0.5
    headers = record["request_info"]["headers"]
    assert headers["authorization"] == REDACTED and headers["cookie"] == REDACTED
    assert record["request_info"]["query_params"] == {"api_key": REDACTED, "q": "1"}
    assert record["environment"]["framework"] == "django"
    assert record["version_info"]["app_version"] == "2.0.0-test"
    assert record["version_info"]["git_commit"] == "abc1234"
    assert str(record["version_info"]["deploy_time"]).startswith("2026-11-01")
    nodes = call_tree(store, project["project_key"], record["trace_id"])
    view = [n for n in nodes if n["function_name"] == "get_user"]
    assert view and view[0]["is_application"] and view[0]["duration"] >= django_app.SLEEP * 0.8


@pytest.mark.parametrize("n", [2, 13])
def test_sql_and_cache_metrics(
    monitored: Client, store: Any, project: dict[str, Any], n: int
) -> None:
    assert len(monitored.get(f"/items?n={n}").json()["items"]) == n
    (record,) = stored_records(store, project["project_key"], 1)
    metrics = record["performance_metrics"]
    assert metrics["database_metrics"]["query_count"] == n
    assert metrics["database_metrics"]["query_time"] > 0
    assert (
        metrics["cache_metrics"]["cache_hits"] == 1
        and metrics["cache_metrics"]["cache_misses"] == 1
    )
    assert metrics["cache_metrics"]["cache_time"] > 0
    assert record["tags"]["api_version"] == "v1"  # from @monitor_view
    assert record["route"] == "/items"


def test_slow_queries_reported_over_threshold(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    middleware = [django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE]
    with override_settings(
        MIDDLEWARE=middleware, PERFORMANCE_MONITOR=_settings(sdk_settings, slow_query_threshold=0)
    ):
        Client().get("/items?n=3")
    (record,) = stored_records(store, project["project_key"], 1)
    slow = record["performance_metrics"]["database_metrics"]["slow_queries"]
    assert len(slow) == 3 and all("SELECT name FROM items" in q["statement"] for q in slow)


def test_template_render_time(monitored: Client, store: Any, project: dict[str, Any]) -> None:
    assert monitored.get("/page").content == b"<ul><li>0</li><li>1</li><li>2</li></ul>"
    (record,) = stored_records(store, project["project_key"], 1)
    assert 0 < record["performance_metrics"].get("template_time", 0) < record["total_duration"]


def test_track_sql_off(sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]) -> None:
    middleware = [django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE]
    with override_settings(
        MIDDLEWARE=middleware, PERFORMANCE_MONITOR=_settings(sdk_settings, track_sql=False)
    ):
        Client().get("/users/1")
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["performance_metrics"]["database_metrics"]["query_count"] == 0


def test_unsampled_and_excluded(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    middleware = [django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE]
    settings = _settings(
        sdk_settings, sampling_rate=0, remote_config=False, exclude_paths=["/page"]
    )
    with override_settings(MIDDLEWARE=middleware, PERFORMANCE_MONITOR=settings):
        client = Client(raise_request_exception=False)
        for i in range(4):
            client.get(f"/users/{i}")
        client.get("/boom")
        client.get("/page")
    key = project["project_key"]
    assert wait_until(lambda: metric_count(store, key, "/users/<int:user_id>") == 4)
    assert wait_until(lambda: metric_count(store, key, "/boom", status_class="5xx") == 1)
    errors = sum(
        d["errors"]
        for d in store.endpoint_metrics.find(
            {"project_key": key, "route": "/boom", "resolution": "1m"}
        )
    )
    assert errors == 1
    assert metric_count(store, key, "/page") == 0
    assert store.records.count_documents({"project_key": key}) == 0


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "/users/7", {}),
    ("get", "/items?n=4", {}),
    ("get", "/stream", {}),
    ("post", "/upload", {"upload": True}),
    ("get", "/missing", {}),
    ("get", "/boom", {}),
    ("head", "/users/7", {}),
    ("get", "/old", {}),
    ("get", "/old", {"follow": True}),
]


def _exchange(method: str, path: str, kwargs: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    kwargs = dict(kwargs)
    if kwargs.pop("upload", False):
        kwargs["data"] = {"file": SimpleUploadedFile("a.txt", b"hello upload body")}
    response = getattr(Client(raise_request_exception=False), method)(path, **kwargs)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
    return response.status_code, headers, body


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), REQUESTS, ids=[f"{m} {p}" for m, p, _ in REQUESTS]
)
def test_responses_identical_with_and_without_sdk(
    sdk_settings: dict[str, Any], method: str, path: str, kwargs: dict[str, Any]
) -> None:
    expected = _exchange(method, path, kwargs)
    middleware = [django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware, PERFORMANCE_MONITOR=_settings(sdk_settings)):
        actual = _exchange(method, path, kwargs)
    assert actual == expected


def test_view_exception_reaches_django_unchanged(monitored: Client) -> None:
    with pytest.raises(RuntimeError, match="^boom$"):
        Client().get("/boom")


def test_under_asgi_the_same_record_is_stored(
    sdk_settings: dict[str, Any], store: Any, project: dict[str, Any]
) -> None:
    """Django's async handler (what an ASGI server runs) adapts the middleware."""
    import asyncio

    from django.test import AsyncClient

    middleware = [django_app.SDK_MIDDLEWARE, *django_app.BASE_MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware, PERFORMANCE_MONITOR=_settings(sdk_settings)):
        client = AsyncClient(raise_request_exception=False)

        async def drive() -> list[Any]:
            return [await client.get("/users/7"), await client.get("/items?n=13")]

        user, items = asyncio.run(drive())
    assert user.status_code == 200 and user.json() == {"id": 7, "name": "user7"}
    assert len(items.json()["items"]) == 13
    records = {r["path"]: r for r in stored_records(store, project["project_key"], 2)}
    assert records["/users/7"]["route"] == "/users/<int:user_id>"
    assert records["/users/7"]["total_duration"] >= django_app.SLEEP
    assert records["/items"]["performance_metrics"]["database_metrics"]["query_count"] == 13
    nodes = call_tree(store, project["project_key"], records["/users/7"]["trace_id"])
    assert any(n["function_name"] == "get_user" and n["is_application"] for n in nodes)
