"""Fixtures that start real components: the embedded store server and the collector.

A store that cannot start FAILS the tests that need it; nothing here skips.
Set PYSTRUMENT_TEST_MONGODB_URL to run everything against a real MongoDB.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystrument_lab.embedded import EmbeddedServer, free_port
from pystrument_lab.store import Store
from tests.utils.services import CollectorProcess

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("PYSTRUMENT_TEST_MONGODB_URL")
    if external:
        yield external
        return
    server = EmbeddedServer(tmp_path_factory.mktemp("store-home"), port=free_port())
    url = server.ensure_running()
    yield url
    server.stop()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A store server of the test's own, which the test may kill and restart."""
    server = EmbeddedServer(tmp_path / "private-store", port=free_port())
    server.ensure_running()
    yield server
    server.stop()


@pytest.fixture
def database_name() -> str:
    return "test_" + uuid.uuid4().hex[:12]


@pytest.fixture
def store(mongo_url: str, database_name: str) -> Iterator[Store]:
    handle = Store(mongo_url, database=database_name)
    handle.ensure_indexes()
    yield handle
    handle.client.drop_database(database_name)
    handle.close()


@pytest.fixture
def collector(store: Store, tmp_path: Path) -> Iterator[CollectorProcess]:
    process = CollectorProcess(store.url, store.db.name, tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def project(collector: CollectorProcess) -> dict:
    return collector.create_project(
        "project-" + uuid.uuid4().hex[:8], framework="flask", sampling_rate=1.0
    )
