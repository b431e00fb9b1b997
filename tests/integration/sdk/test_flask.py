from __future__ import annotations

import io
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from performance_monitor.core.record import REDACTED
from pyinstrument.session import Session

from .apps import flask_app
from .helpers import call_tree, metric_count, stored_records, wait_until


@pytest.fixture
def app(sdk_settings: dict[str, Any], tmp_path: Path) -> Any:
    return flask_app.create_app(sdk_settings, tmp_path / "db.sqlite3")


def test_sampled_request_is_stored_with_route_duration_tree_and_redaction(
    app: Any, store: Any, project: dict[str, Any]
) -> None:
    client = app.test_client()
    response = client.get(
        "/users/42?token=t0p&page=2", headers={"Authorization": "Bearer s3cret", "X-Trace": "yes"}
    )
    assert response.status_code == 200 and response.json == {"id": 42, "name": "user42"}
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["route"] == "/users/<int:user_id>" and record["path"] == "/users/42"
    assert record["status_code"] == 200 and record["method"] == "GET"
    assert flask_app.SLEEP <= record["total_duration"] < flask_app.SLEEP + 0.5
    assert record["request_info"]["headers"]["authorization"] == REDACTED
    assert record["request_info"]["headers"]["x-trace"] == "yes"
    assert record["request_info"]["query_params"] == {"token": REDACTED, "page": "2"}
    assert record["version_info"]["app_version"] == "2.0.0-test"
    assert record["version_info"]["git_commit"] == "abc1234"
    assert record["environment"]["framework"] == "flask"
    nodes = call_tree(store, project["project_key"], record["trace_id"])
    view = [n for n in nodes if n["function_name"] == "get_user"]
    assert view and view[0]["is_application"] and view[0]["file_path"].endswith("flask_app.py")
    assert view[0]["duration"] >= flask_app.SLEEP * 0.8
    sleeps = [
        n
        for n in nodes
        if n["function_name"] == "sleep" and n["parent_call_id"] == view[0]["call_id"]
    ]
    # At least the sleep (less a sample or two), at most the request: a loaded machine
    # wakes the thread late, and the samples bill that wait to the sleep.
    assert sleeps and flask_app.SLEEP - 0.02 <= sleeps[0]["duration"] <= record["total_duration"]
    # The compressed pyinstrument session arrives too, and loads back into pyinstrument.
    document = store.call_trees.find_one(
        {"project_key": project["project_key"], "trace_id": record["trace_id"]}
    )
    session = Session.from_json(json.loads(zlib.decompress(document["session"])))
    assert session.duration >= flask_app.SLEEP
    assert "get_user" in {frame.function for frame in _walk(session.root_frame())}


def _walk(frame: Any) -> Any:
    yield frame
    for child in frame.children:
        yield from _walk(child)


@pytest.mark.parametrize("n", [3, 11])
def test_query_count_equals_queries_the_view_ran(
    app: Any, store: Any, project: dict[str, Any], n: int
) -> None:
    response = app.test_client().get(f"/items?n={n}")
    assert len(response.json["items"]) == n
    (record,) = stored_records(store, project["project_key"], 1)
    database = record["performance_metrics"]["database_metrics"]
    assert database["query_count"] == n
    assert 0 < database["query_time"] < record["total_duration"]
    assert record["tags"]["api_version"] == "v1"  # from @monitor_performance
    memory = record["performance_metrics"]["memory_usage"]
    assert memory["peak_memory"] > 0  # track_memory=True on the decorator


def test_every_request_lands_in_endpoint_metrics_even_unsampled(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    settings = {**sdk_settings, "sampling_rate": 0.0, "remote_config": False}
    app = flask_app.create_app(settings, tmp_path / "db.sqlite3")
    client = app.test_client()
    for user_id in range(5):
        assert client.get(f"/users/{user_id}").get_json()["id"] == user_id
    assert client.get("/missing").get_data()  # a real server always reads the body
    key = project["project_key"]
    assert wait_until(lambda: metric_count(store, key, "/users/<int:user_id>") == 5)
    assert wait_until(lambda: metric_count(store, key, "[unmatched]", status_class="4xx") == 1)
    assert store.records.count_documents({"project_key": key}) == 0


def test_excluded_paths_are_not_measured(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    app = flask_app.create_app(
        {**sdk_settings, "excluded_paths": ["/users"]}, tmp_path / "db.sqlite3"
    )
    client = app.test_client()
    client.get("/users/1").get_data()
    client.get("/items?n=1").get_data()
    stored_records(store, project["project_key"], 1)
    routes = {r["route"] for r in store.records.find({"project_key": project["project_key"]})}
    assert routes == {"/items"}


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/users/7", {}),
    ("GET", "/items?n=4", {}),
    ("GET", "/stream", {}),
    (
        "POST",
        "/upload",
        {
            "data": {"file": (io.BytesIO(b"hello upload body"), "a.txt")},
            "content_type": "multipart/form-data",
        },
    ),
    ("GET", "/missing", {}),
    ("GET", "/boom", {}),
    ("HEAD", "/users/7", {}),
    ("GET", "/old", {}),
    ("GET", "/old", {"follow_redirects": True}),
]


def _exchange(
    app: Any, method: str, path: str, kwargs: dict[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    kwargs = {k: (dict(v) if k == "data" else v) for k, v in kwargs.items()}
    if "data" in kwargs:
        kwargs["data"] = {"file": (io.BytesIO(b"hello upload body"), "a.txt")}
    response = app.test_client().open(path, method=method, **kwargs)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
    return response.status_code, headers, response.get_data()


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), REQUESTS, ids=[f"{m} {p}" for m, p, _ in REQUESTS]
)
def test_responses_identical_with_and_without_sdk(
    sdk_settings: dict[str, Any], tmp_path: Path, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    bare = flask_app.create_app(None, tmp_path / "bare.sqlite3")
    monitored = flask_app.create_app(sdk_settings, tmp_path / "monitored.sqlite3")
    assert _exchange(bare, method, path, kwargs) == _exchange(monitored, method, path, kwargs)


def test_exceptions_propagate_unchanged_when_flask_propagates(
    sdk_settings: dict[str, Any], tmp_path: Path
) -> None:
    app = flask_app.create_app(sdk_settings, tmp_path / "db.sqlite3")
    app.testing = True  # Flask re-raises view exceptions
    with pytest.raises(RuntimeError, match="^boom$"):
        app.test_client().get("/boom")


def test_remote_config_overrides_local_sampling(
    sdk_settings: dict[str, Any],
    tmp_path: Path,
    store: Any,
    project: dict[str, Any],
    collector: Any,
) -> None:
    # The project was created with sampling_rate 1.0; locally we ask for 0 %.
    app = flask_app.create_app({**sdk_settings, "sampling_rate": 0.0}, tmp_path / "db.sqlite3")
    monitor = app.extensions["performance_monitor"].monitor
    assert wait_until(lambda: monitor.sampling_rate == 1.0)
    app.test_client().get("/users/5").get_data()
    (record,) = stored_records(store, project["project_key"], 1)
    assert record["path"] == "/users/5"
