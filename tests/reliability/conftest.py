from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pystrument_lab.store import Store
from tests.utils.audit import new_project, running_collector
from tests.utils.services import CollectorProcess


@pytest.fixture(scope="module")
def shared_collector(
    mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    """One collector for a whole module of tests that do not restart it."""
    home: Path = tmp_path_factory.mktemp("collector-home")
    with running_collector(mongo_url, home) as process:
        yield process


@pytest.fixture(scope="module")
def shared_project(shared_collector: CollectorProcess) -> dict[str, Any]:
    return new_project(shared_collector, "reliability", framework="flask", sampling_rate=1.0)


@pytest.fixture(scope="module")
def shared_store(shared_collector: CollectorProcess) -> Iterator[Store]:
    """A handle on the shared collector's database, to check what was stored."""
    handle = Store(
        shared_collector.env["PYSTRUMENT_MONGODB_URL"],
        database=shared_collector.env["PYSTRUMENT_DATABASE"],
    )
    yield handle
    handle.close()
