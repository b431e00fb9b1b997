"""The SDK under real servers: gunicorn with 2 pre-forked workers, and uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pystrument_lab.embedded import free_port

from .helpers import call_tree, metric_count, stored_records, wait_until

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _serve(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/users/0", timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()  # SIGTERM: workers exit and flush (atexit)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _env(sdk_settings: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSTRUMENT_")}
    env.update({f"PYSTRUMENT_{k.upper()}": str(v) for k, v in sdk_settings.items()})
    env["PYSTRUMENT_REMOTE_CONFIG"] = "false"
    env["TEST_DB_PATH"] = str(tmp_path / "db.sqlite3")
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-load", "preload"])
def test_gunicorn_two_workers(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any], preload: bool
) -> None:
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
    ]
    command += ["--preload"] if preload else []
    command += ["tests.integration.sdk.apps.flask_app:app_from_env()"]
    served = _serve(command, port, _env(sdk_settings, tmp_path), tmp_path / "gunicorn.log")
    url = next(served)
    with ThreadPoolExecutor(4) as pool:
        bodies = list(
            pool.map(lambda i: httpx.get(f"{url}/users/{i}", timeout=10).json(), range(1, 21))
        )
    assert [b["id"] for b in bodies] == list(range(1, 21))
    key = project["project_key"]
    expected = sorted(f"/users/{i}" for i in range(1, 21))

    def user_records() -> list[dict[str, Any]]:
        found = [r for r in store.records.find({"project_key": key}) if r["path"] != "/users/0"]
        return found if len(found) >= 20 else []

    records = wait_until(user_records, timeout=20) or user_records()
    assert sorted(r["path"] for r in records) == expected
    assert len({r["trace_id"] for r in records}) == 20
    pids = {r["environment"]["server_info"]["pid"] for r in records}
    assert len(pids) == 2, f"both workers should have sent records: {pids}"
    probes = store.records.count_documents({"project_key": key, "path": "/users/0"})
    assert wait_until(
        lambda: metric_count(store, key, "/users/<int:user_id>") == 20 + probes, timeout=20
    )
    next(served, None)


def test_uvicorn(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    port = free_port()
    command = [
        str(BIN / "uvicorn"),
        "--factory",
        "tests.integration.sdk.apps.fastapi_app:app_from_env",
    ]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    served = _serve(command, port, _env(sdk_settings, tmp_path), tmp_path / "uvicorn.log")
    url = next(served)
    assert httpx.get(f"{url}/sync-users/5").json() == {"id": 5}
    assert len(httpx.get(f"{url}/items", params={"n": 6}).json()["items"]) == 6
    key = project["project_key"]
    records = {r["route"]: r for r in stored_records(store, key, 3, timeout=20)}
    sync_record = records["/sync-users/{user_id}"]
    nodes = call_tree(store, key, sync_record["trace_id"])
    assert "get_user_sync" in [n["function_name"] for n in nodes]
    assert records["/items"]["performance_metrics"]["database_metrics"]["query_count"] == 6
    next(served, None)
