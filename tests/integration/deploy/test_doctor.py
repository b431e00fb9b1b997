"""``pystrument doctor`` and ``python -m performance_monitor check`` against real processes.

Each test runs an installation of its own: an embedded store, ``pystrument
collector``, ``pystrument worker`` and ``pystrument scheduler`` as
subprocesses sharing one ``PYSTRUMENT_HOME``, then breaks one thing and
checks the exact diagnosis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pystrument_lab.embedded import EmbeddedServer, free_port
from pystrument_lab.store import Store

CHECKS = ["store", "collector", "indexes", "workers", "schedulers", "project", "analysis", "disk"]


class Installation:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.server = EmbeddedServer(home, port=free_port())
        self.collector_port = free_port()
        self.collector_url = f"http://127.0.0.1:{self.collector_port}"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PYSTRUMENT_") and key not in ("OPENAI_API_KEY", "MONGODB_URL")
        }
        self.env.update(
            PYSTRUMENT_HOME=str(home),
            PYSTRUMENT_STORE_PORT=str(self.server.port),
            PYSTRUMENT_COLLECTOR_PORT=str(self.collector_port),
            PYSTRUMENT_ADMIN_TOKEN="doctor-admin-" + os.urandom(4).hex(),
            PYSTRUMENT_STORE_TIMEOUT_MS="1000",
            LOG_LEVEL="WARNING",
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def pystrument(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pystrument_lab.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "pystrument_lab.cli", name, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        process.wait(timeout=30)

    def store(self) -> Store:
        return Store(self.server.state().url)  # type: ignore[union-attr]

    def wait_for(self, condition: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                log = (self.home / f"{name}.log").read_text()[-2000:]
                assert process.poll() is None, f"{name} exited: {log}"
            try:
                if condition():
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def sdk_check(self, key: str) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env,
            "PYSTRUMENT_PROJECT_KEY": key,
            "PYSTRUMENT_API_ENDPOINT": self.collector_url,
        }
        return subprocess.run(
            [sys.executable, "-m", "performance_monitor", "check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.home,
        )

    def doctor(self) -> tuple[int, str, list[dict[str, Any]]]:
        text = self.pystrument("doctor")
        as_json = self.pystrument("doctor", "--json")
        assert text.returncode == as_json.returncode, (text.stderr, as_json.stderr)
        return text.returncode, text.stdout, json.loads(as_json.stdout)


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    """A running installation with a project 'storefront' and no data yet."""
    setup = Installation(tmp_path)
    setup.server.ensure_running()
    try:
        setup.start("collector")
        setup.start("worker")
        setup.start("scheduler")
        store = setup.store()
        setup.wait_for(
            lambda: httpx.get(setup.collector_url + "/health", timeout=1).json()["code"] == 0,
            "the collector",
        )
        setup.wait_for(
            lambda: store.heartbeats("worker") and store.heartbeats("scheduler"), "heartbeats"
        )
        store.close()
        created = setup.pystrument("projects", "create", "storefront", "--json")
        assert created.returncode == 0, created.stderr
        setup.project_key = json.loads(created.stdout)["project_key"]  # type: ignore[attr-defined]
        yield setup
    finally:
        for name in list(setup.processes):
            setup.stop(name)
        setup.server.stop()


def _statuses(findings: list[dict[str, Any]]) -> dict[str, str]:
    return {finding["check"]: finding["status"] for finding in findings}


def test_a_healthy_installation(installation: Installation) -> None:
    check = installation.sdk_check(installation.project_key)  # type: ignore[attr-defined]
    assert check.returncode == 0, check.stdout
    lines = check.stdout.splitlines()
    assert lines[0] == f"collector:    {installation.collector_url}"
    assert lines[2] == (
        "key check:    valid; the project is enabled, samples 30% (this app's setting: 10%)"
    )
    assert lines[3].startswith("test record:  accepted and stored (trace id self-check-")

    code, text, findings = installation.doctor()
    assert code == 0, text
    assert [finding["check"] for finding in findings] == CHECKS
    assert set(_statuses(findings).values()) == {"ok"}, text
    messages = {finding["check"]: finding["message"] for finding in findings}
    assert messages["workers"] == "1 analysis worker alive"
    assert messages["schedulers"] == "1 scheduler alive"
    assert messages["project"].startswith("project 'storefront' receives data (last ")
    assert messages["analysis"] == "analysis uses the rule engine (no AI service configured)"
    assert "the last 24 h added 1 record of " in messages["disk"]
    assert text.splitlines()[-1] == "all good."


def test_the_store_is_down(installation: Installation) -> None:
    data_dir = installation.server.data_dir
    installation.server.stop()
    code, text, findings = installation.doctor()
    assert code == 1
    assert text.splitlines() == [
        f"PROBLEM  store: the embedded store is not running (its data is in {data_dir})",
        "         fix: start it with `pystrument store start`, or everything with "
        "`pystrument up`; for a real MongoDB set PYSTRUMENT_MONGODB_URL",
        f"PROBLEM  collector: the collector at {installation.collector_url} answers but "
        "reports: the store does not answer; check PYSTRUMENT_MONGODB_URL or "
        "'pystrument store status'",
        "         fix: it cannot reach the store; see the store finding",
        "2 problems, 0 warnings.",
    ]
    assert findings[0]["data"] == {"embedded": True, "data_dir": str(data_dir)}


def test_an_sdk_with_a_wrong_key(installation: Installation) -> None:
    wrong = "pk_NotTheRightKey0123456789abcdef"
    check = installation.sdk_check(wrong)
    assert check.returncode == 1
    assert check.stdout.splitlines()[1:] == [
        "project key:  pk_NotTh…",
        "key check:    HTTP 401 code 20003: the project key is not known; check PROJECT_KEY "
        "in the SDK configuration",
        "test record:  refused: HTTP 401 code 20003: the project key is not known; check "
        "PROJECT_KEY in the SDK configuration",
        "fix:          the collector does not know this key; copy it from "
        "`pystrument projects list`",
    ]

    code, text, findings = installation.doctor()
    assert code == 1
    assert [(f["check"], f["status"]) for f in findings if f["status"] != "ok"] == [
        ("project key", "problem"),
        ("project", "warning"),
    ]
    problem = findings[[f["check"] for f in findings].index("project key")]
    assert problem["message"].startswith(
        "the collector refused requests carrying an unknown project key 'pk_NotTh…' (last at "
    )
    assert problem["message"].endswith("): an SDK is configured with a wrong key")
    assert "project 'storefront' has received nothing ever" in text
    assert wrong not in text  # only the first characters of a presented key are kept


def test_no_worker_is_running(installation: Installation) -> None:
    installation.stop("worker")
    check = installation.sdk_check(installation.project_key)  # type: ignore[attr-defined]
    assert check.returncode == 0, check.stdout
    store = installation.store()
    record = store.records.find_one({"path": "/pystrument-self-check"})
    store.close()
    assert record is not None
    queued = httpx.post(
        f"{installation.collector_url}/api/v1/analysis/analyze/{record['_id']}",
        headers={"Authorization": "Bearer " + installation.env["PYSTRUMENT_ADMIN_TOKEN"]},
        timeout=30,
    )
    assert queued.json()["code"] == 0, queued.text

    code, text, findings = installation.doctor()
    assert code == 1
    assert _statuses(findings) == {check: "ok" for check in CHECKS} | {"workers": "problem"}
    assert (
        "PROBLEM  workers: no analysis worker is alive (none has sent a heartbeat in the last "
        "90 s); 1 analysis is waiting\n"
        "         fix: start one with `pystrument worker` (more on other machines if the queue "
        "grows)\n"
    ) in text
    assert text.splitlines()[-1] == "1 problem, 0 warnings."
