"""A store seeded with a small two-version service, and the dashboard state over it."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from panel_apps.state import AppState
from pystrument_lab.loaders import Lab
from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record

SEARCH, USER = "/api/search", "/api/users/{id}"


def search_tree(duration: float, rank_share: float) -> list[dict[str, Any]]:
    rank = duration * rank_share
    fetch = duration * 0.9 - rank
    return [
        {"call_id": 0, "parent_call_id": None, "function_name": "dispatch", "file_path": "app.py",
         "line_number": 1, "duration": duration, "self_time": duration * 0.1, "depth": 0, "call_order": 0},
        {"call_id": 1, "parent_call_id": 0, "function_name": "search", "file_path": "shop/search.py",
         "line_number": 10, "duration": duration * 0.9, "self_time": 0.0, "depth": 1, "call_order": 0,
         "is_application": True},
        {"call_id": 2, "parent_call_id": 1, "function_name": "fetch_products", "file_path": "shop/db.py",
         "line_number": 30, "duration": fetch, "self_time": fetch, "depth": 2, "call_order": 0,
         "is_application": True},
        {"call_id": 3, "parent_call_id": 1, "function_name": "rank_results", "file_path": "shop/ranking.py",
         "line_number": 5, "duration": rank, "self_time": rank, "depth": 2, "call_order": 1,
         "is_application": True},
    ]  # fmt: skip


def seed_shop(store: Store, *, name: str = "shop", now: datetime | None = None) -> dict[str, Any]:
    """Project ``name``: /api/search regresses from 1.0 (~50 ms) to 1.1 (~150 ms, in rank_results)."""
    now = now or datetime.now(timezone.utc)
    project = store.create_project(name, framework="flask", sampling_rate=1.0)
    key = project["project_key"]
    rng = random.Random(7)
    records, points = [], []
    for version, search_ms, rank_share, start in (
        ("1.0", 50, 0.2, now - timedelta(hours=2)),
        ("1.1", 150, 0.7, now - timedelta(minutes=50)),
    ):
        for minute in range(40):
            at = start + timedelta(minutes=minute)
            search = [search_ms / 1000 * rng.uniform(0.9, 1.1) for _ in range(6)]
            users = [0.02 * rng.uniform(0.9, 1.1) for _ in range(4)]
            points.append(make_metric(search, route=SEARCH, app_version=version, start=at))
            points.append(make_metric(users, route=USER, app_version=version, start=at))
            if minute % 4 == 0:
                records.append(
                    make_record(path="/api/search", route=SEARCH, duration=search[0], app_version=version,
                                timestamp=at, nodes=search_tree(search[0], rank_share))
                )  # fmt: skip
                records.append(
                    make_record(
                        path="/api/users/7",
                        route=USER,
                        duration=users[0],
                        app_version=version,
                        timestamp=at,
                    )
                )
    points.append(
        make_metric(
            [0.5],
            route=USER,
            status_class="5xx",
            errors=1,
            app_version="1.1",
            start=now - timedelta(minutes=5),
        )
    )
    for point in points:
        point["interval_start"] = point["interval_end"] = datetime.fromisoformat(
            point["interval_start"]
        )
    for record in records:
        record["timestamp"] = datetime.fromisoformat(record["timestamp"])
    store.add_metrics(key, points)
    store.insert_records(key, records)
    store.update_project(key, {"last_activity": now})
    return {**project, "records": records}


@pytest.fixture(scope="module")
def seeded_shop(mongo_url: str) -> Iterator[tuple[dict[str, Any], dict[str, list[dict]]]]:
    """The shop seeded once per module (the 483 metric updates take most of a second),
    as the project and every stored document, which each test copies into its own store."""
    name = "test_shop_" + uuid.uuid4().hex[:12]
    template = Store(mongo_url, database=name)
    template.ensure_indexes()
    # What every new store writes for itself (e.g. its migration markers) is not copied.
    own = {
        collection: {doc["_id"] for doc in template.db[collection].find({}, {"_id": 1})}
        for collection in template.db.list_collection_names()
    }
    project = seed_shop(template)
    documents = {
        collection: [
            doc
            for doc in template.db[collection].find({})
            if doc["_id"] not in own.get(collection, set())
        ]
        for collection in template.db.list_collection_names()
        if not collection.startswith("system.")
    }
    template.client.drop_database(name)
    template.close()
    yield project, documents


@pytest.fixture
def shop(store: Store, seeded_shop: tuple[dict[str, Any], dict[str, list[dict]]]) -> dict[str, Any]:
    project, documents = seeded_shop
    for collection, items in documents.items():
        if items:
            store.db[collection].insert_many(copy.deepcopy(items))
    return copy.deepcopy(project)


@pytest.fixture
def app_state(store: Store, shop: dict[str, Any]) -> AppState:
    return AppState(Lab(store), project=shop["name"], time_range="6h")
