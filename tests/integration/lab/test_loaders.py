"""Loaders over data that went through the real collector into the real store."""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import httpx
import pandas as pd
import polars as pl
import pytest
from performance_monitor.core import histogram

from pystrument_lab.errors import ParameterError, ProjectNotFound
from pystrument_lab.loaders import ENDPOINT_COLUMNS, RECORD_COLUMNS, Lab
from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(Fraction(str(q)) / 100 * len(ordered))) - 1]


def _send(collector: CollectorProcess, key: str, path: str, body: dict) -> None:
    answer = httpx.post(collector.url + path, json=body, headers={"X-Project-Key": key}).json()
    assert answer["code"] == 0, answer


@pytest.fixture
def seeded(collector: CollectorProcess, project: dict, store: Store) -> dict:
    """Two versions of three endpoints, metrics for every request, some sampled records."""
    key = project["project_key"]
    rng = random.Random(3)
    now = datetime.now(timezone.utc)
    durations: dict[tuple[str, str], list[float]] = {}
    plan = [
        ("/api/users/{id}", "1.0", 0.02),
        ("/api/users/{id}", "1.1", 0.02),
        ("/api/search", "1.0", 0.05),
        ("/api/search", "1.1", 0.15),
        ("/api/orders", "1.0", 0.3),
    ]
    for route, version, typical in plan:
        values = [rng.lognormvariate(math.log(typical), 0.3) for _ in range(200)]
        durations[(route, version)] = values
        for minute in range(4):  # four flushes spread over the last hour
            part = values[minute * 50 : (minute + 1) * 50]
            point = make_metric(
                part,
                route=route,
                app_version=version,
                start=now - timedelta(minutes=5 + 10 * minute),
                errors=5 if route == "/api/orders" else 0,
            )
            _send(
                collector,
                key,
                "/api/v1/performance/metrics",
                {"batch_id": uuid.uuid4().hex, "metrics": [point]},
            )
    records = []
    for index in range(30):
        route, version = ("/api/search", "1.1") if index % 3 else ("/api/users/{id}", "1.0")
        records.append(
            make_record(
                trace_id=f"r{index:02d}",
                route=route,
                path=route.replace("{id}", "7"),
                duration=0.01 * (index + 1),
                app_version=version,
                timestamp=now - timedelta(minutes=index, seconds=30),
                status=500 if index == 4 else 200,
            )
        )
    records[0]["performance_metrics"]["database_metrics"] = {"query_count": 12, "query_time": 0.004}
    records[0]["environment"]["server_info"] = {"hostname": "web-1"}
    _send(collector, key, "/api/v1/performance/collect", {"records": records})
    return {"key": key, "name": project["name"], "durations": durations, "lab": Lab(store)}


def test_endpoints_percentiles_match_sent_durations(seeded: dict) -> None:
    lab: Lab = seeded["lab"]
    frame = lab.endpoints(seeded["name"], time_range="1h")
    assert isinstance(frame, pl.DataFrame) and frame.columns == list(ENDPOINT_COLUMNS)
    rows = {row["route"]: row for row in frame.iter_rows(named=True)}
    search = (
        seeded["durations"][("/api/search", "1.0")] + seeded["durations"][("/api/search", "1.1")]
    )
    assert rows["/api/search"]["count"] == 400
    for q in (50, 95, 99):
        exact = _exact(search, q)
        assert abs(rows["/api/search"][f"p{q}"] - exact) / exact <= histogram.RELATIVE_ERROR
    assert rows["/api/orders"]["error_rate"] == pytest.approx(20 / 200)
    assert rows["/api/orders"]["throughput"] == pytest.approx(200 / 3600, rel=0.05)
    only_new = lab.endpoints(seeded["key"], time_range="1h", app_version="1.1")
    assert dict(zip(only_new["route"], only_new["count"], strict=True)) == {
        "/api/users/{id}": 200,
        "/api/search": 200,
    }


def test_trends_and_versions(seeded: dict) -> None:
    lab: Lab = seeded["lab"]
    trend = lab.trends(seeded["name"], time_range="1h", bucket="10m")
    assert trend["count"].sum() == 1000
    assert trend["bucket_start"].dtype == pl.Datetime("us", "UTC")
    assert trend.height == 7  # 60 minutes in 10-minute buckets, widened to whole buckets
    search = lab.trends(seeded["name"], time_range="1h", route="/api/search")
    assert search["count"].sum() == 400
    versions = lab.versions(seeded["name"], time_range="1h")
    assert versions["app_version"].to_list() == ["1.0", "1.1"] or set(versions["app_version"]) == {
        "1.0",
        "1.1",
    }
    counts = dict(zip(versions["app_version"], versions["count"], strict=True))
    assert counts == {"1.0": 600, "1.1": 400}


def test_records_filters_and_columns(seeded: dict) -> None:
    lab: Lab = seeded["lab"]
    frame = lab.records(seeded["name"])
    assert frame.columns == list(RECORD_COLUMNS) and frame.height == 30
    assert frame["trace_id"][0] == "r00"  # newest first
    assert frame["timestamp"].dtype == pl.Datetime("us", "UTC")
    first = frame.row(0, named=True)
    assert (
        first["query_count"] == 12
        and first["host"] == "web-1"
        and first["route"] == "/api/users/{id}"
    )
    assert lab.records(seeded["name"], route="/api/search").height == 20
    assert lab.records(seeded["name"], status=500)["trace_id"].to_list() == ["r04"]
    assert lab.records(seeded["name"], app_version="1.0").height == 10
    assert lab.records(seeded["name"], min_duration=0.25)["trace_id"].to_list() == [
        "r24",
        "r25",
        "r26",
        "r27",
        "r28",
        "r29",
    ]
    recent = lab.records(seeded["name"], time_range="10m")["trace_id"].to_list()
    assert recent == [f"r{index:02d}" for index in range(10)]  # r10 is 10.5 minutes old
    assert lab.records(seeded["name"], limit=3, sort="-total_duration")["trace_id"].to_list() == [
        "r29",
        "r28",
        "r27",
    ]
    as_pandas = lab.records(seeded["name"], engine="pandas")
    assert isinstance(as_pandas, pd.DataFrame) and len(as_pandas) == 30


def test_record_and_merged_tree(seeded: dict) -> None:
    lab: Lab = seeded["lab"]
    record = lab.record("r01")
    assert record.data["route"] == "/api/search" and record.tree is not None
    assert [node.function_name for node in record.tree.walk()] == ["wsgi_app", "handler"]
    merged = lab.merged_tree(seeded["name"], "/api/search")
    expected = sum(0.01 * (index + 1) for index in range(30) if index % 3)
    assert merged.n_trees == 20
    assert merged.total == pytest.approx(expected)
    with pytest.raises(ParameterError, match="no call trees"):
        lab.merged_tree(seeded["name"], "/nope")


def test_empty_results_have_the_schema(store: Store) -> None:
    lab = Lab(store)
    project = store.create_project("empty")
    for frame in (
        lab.records("empty"),
        lab.endpoints("empty"),
        lab.versions("empty"),
        lab.records(project["project_key"], engine="pandas"),
    ):
        assert len(frame) == 0
    assert lab.records("empty").schema["total_duration"] == pl.Float64
    assert lab.trends("empty", time_range="1h")["count"].sum() == 0
    with pytest.raises(ProjectNotFound):
        lab.records("does-not-exist")
    projects = lab.projects()
    assert projects["name"].to_list() == ["empty"] and projects["sampling_rate"][0] == 0.3
