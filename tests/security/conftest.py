from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pystrument_lab.store import Store
from tests.utils.audit import new_project
from tests.utils.services import CollectorProcess

#: An LLM key the collector's environment holds; it must never show up anywhere.
LLM_KEY = "sk-canary-" + uuid.uuid4().hex


class ProductCollector(CollectorProcess):
    """The collector as the product runs it: ``pystrument collector`` at the default INFO level.

    The plain test collector logs at WARNING only; a leak into the access log
    shows at INFO, so the secret audit runs this one.
    """

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "pystrument_lab.cli", "collector"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            command, env={**self.env, "LOG_LEVEL": "INFO"}, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/health", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"collector did not start: {self.log_path.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def audit_collector(
    mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProductCollector]:
    database = "test_" + uuid.uuid4().hex[:12]
    home = tmp_path_factory.mktemp("audit-home")
    process = ProductCollector(mongo_url, database, home, OPENAI_API_KEY=LLM_KEY)
    process.start()
    yield process
    process.stop()
    store = Store(mongo_url, database=database)
    store.client.drop_database(database)
    store.close()


@pytest.fixture(scope="module")
def audit_store(audit_collector: ProductCollector) -> Iterator[Store]:
    handle = Store(
        audit_collector.env["PYSTRUMENT_MONGODB_URL"],
        database=audit_collector.env["PYSTRUMENT_DATABASE"],
    )
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def project_a(audit_collector: ProductCollector) -> dict[str, Any]:
    return new_project(audit_collector, "tenant-a", sampling_rate=0.25)


@pytest.fixture(scope="module")
def project_b(audit_collector: ProductCollector) -> dict[str, Any]:
    return new_project(audit_collector, "tenant-b", sampling_rate=0.75)
