"""Async endpoints under real ASGI servers: each stored tree covers its own request.

A FastAPI app written here awaits helper coroutines (sleep, then CPU work in a
plain function) and is served by uvicorn (asyncio and uvloop loops), hypercorn
and gunicorn with uvicorn workers. Per stored record: the tree's root covers
``total_duration`` within 5 %, the helper and what it calls are in it, under
the endpoint, and two requests served at the same time each hold only their
own helper.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pystrument_lab.embedded import free_port

from .helpers import wait_until

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[3]

APP = textwrap.dedent(
    """
    import asyncio
    import time

    from fastapi import FastAPI
    from performance_monitor.fastapi import PerformanceMiddleware


    def tally(seconds):
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            pass


    async def quill(n):
        await asyncio.sleep(0.025)
        tally(0.006)
        return n


    async def marrow(n):
        await asyncio.sleep(0.015)
        tally(0.004)
        await asyncio.sleep(0.015)
        return n * 2


    async def sprig(n):
        await asyncio.sleep(0.02)
        tally(0.003)
        return n + 1


    app = FastAPI()


    @app.get("/ready")
    async def ready():
        return {}


    @app.get("/q/{n}")
    async def first(n: int):
        return {"v": await quill(n)}


    @app.get("/m/{n}")
    async def second(n: int):
        return {"v": await marrow(n)}


    @app.get("/g/{n}")
    async def third(n: int):
        values = await asyncio.gather(sprig(n), sprig(n + 1))
        return {"v": sum(values)}


    app.add_middleware(PerformanceMiddleware)
    """
)

MODULE = "async_svc"
SERVERS = {
    "uvicorn-asyncio": ["uvicorn", f"{MODULE}:app", "--loop", "asyncio", "--host", "127.0.0.1"],
    "uvicorn-uvloop": ["uvicorn", f"{MODULE}:app", "--loop", "uvloop", "--host", "127.0.0.1"],
    "hypercorn": ["hypercorn", f"{MODULE}:app", "-b", "127.0.0.1:{port}"],
    "gunicorn-uvicorn": [
        "gunicorn",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        "1",
        "-b",
        "127.0.0.1:{port}",
        f"{MODULE}:app",
    ],
}
ROUNDS = 15  # per server: 2 sequential + 2 concurrent requests per round, 60 records


@pytest.fixture(params=sorted(SERVERS))
def served(
    request: pytest.FixtureRequest, sdk_settings: dict[str, Any], tmp_path: Path
) -> Iterator[str]:
    (tmp_path / f"{MODULE}.py").write_text(APP)
    port = free_port()
    command = [str(BIN / SERVERS[request.param][0])]
    command += [part.format(port=port) for part in SERVERS[request.param][1:]]
    if request.param.startswith("uvicorn"):
        command += ["--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSTRUMENT_")}
    env.update({f"PYSTRUMENT_{k.upper()}": str(v) for k, v in sdk_settings.items()})
    env.update(PYSTRUMENT_REMOTE_CONFIG="false", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()}")
            try:
                return httpx.get(url + "/ready", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_until(up, timeout=30, interval=0.1), log.read_text()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _children(nodes: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes if n["parent_call_id"] == parent["call_id"]]


def _outline(nodes: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{'  ' * n['depth']}{n['function_name']} {n['duration'] * 1000:.1f} ms"
        for n in nodes
        if n["duration"] > 0.001
    )


def _named(nodes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [n for n in nodes if n["function_name"] == name]


def test_async_trees_cover_their_own_request(
    served: str, store: Any, project: dict[str, Any]
) -> None:
    barrier = threading.Barrier(2)

    def together(path: str) -> int:
        with httpx.Client(timeout=10) as client:
            barrier.wait()
            return client.get(served + path).json()["v"]

    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(2) as pool:
        for i in range(1, ROUNDS + 1):
            assert client.get(f"{served}/q/{i}").json() == {"v": i}
            assert client.get(f"{served}/g/{i}").json() == {"v": 2 * i + 3}
            pair = list(pool.map(together, [f"/q/{i}", f"/m/{i}"]))
            assert pair == [i, 2 * i]

    key = project["project_key"]

    def served_records() -> list[dict[str, Any]]:
        found = [r for r in store.records.find({"project_key": key}) if r["route"] != "/ready"]
        return found if len(found) >= 4 * ROUNDS else []

    records = wait_until(served_records, timeout=30) or served_records()
    assert len(records) == 4 * ROUNDS

    def tree_documents() -> list[dict[str, Any]]:
        found = list(store.call_trees.find({"project_key": key}))
        return found if len(found) > len(records) else []

    documents = {d["trace_id"]: d for d in wait_until(tree_documents, timeout=30)}
    helpers = {"/q/{n}": ("first", "quill"), "/m/{n}": ("second", "marrow")}
    # What each helper spends sleeping and in tally(), a floor for its node's
    # duration; a loop's timer may fire up to 1 ms early (uvloop counts in ms).
    slept = {"quill": 0.025 - 0.001 + 0.006, "marrow": 0.03 - 0.002 + 0.004}
    coverage = []
    for record in records:
        nodes = documents[record["trace_id"]]["nodes"]
        # The tree names the endpoint as where the application starts.
        opened = nodes[documents[record["trace_id"]]["application_root"]]
        views = {"/q/{n}": "first", "/m/{n}": "second", "/g/{n}": "third"}
        assert opened["function_name"] == views[record["route"]], _outline(nodes)
        total = record["performance_metrics"]["total_duration"]
        coverage.append(nodes[0]["duration"] / total)
        if abs(nodes[0]["duration"] - total) > 0.05 * total:
            pytest.fail(f"{record['path']}: {total=}\n{_outline(nodes)}")
        if record["route"] == "/g/{n}":
            (endpoint,) = _named(nodes, "third")
            sprigs = [n for n in _children(nodes, endpoint) if n["function_name"] == "sprig"]
            assert sprigs and all(n["is_application"] for n in sprigs), record["path"]
            assert any(_named(_children(nodes, n), "tally") for n in sprigs), _outline(nodes)
            continue
        view, helper = helpers[record["route"]]
        other = next(h for v, h in helpers.values() if h != helper)
        (endpoint,) = _named(nodes, view)
        (found,) = [n for n in _children(nodes, endpoint) if n["function_name"] == helper]
        assert found["is_application"] and endpoint["is_application"]
        assert _named(_children(nodes, found), "tally"), f"{record['path']}\n{_outline(nodes)}"
        # The time it slept is in it, as an explicit await below it.
        # A sample lands where the stack is when the thread runs again: while it
        # waited for a CPU (run_queue_time, Linux) samples shift by up to that much.
        if sys.platform == "linux":
            assert record["performance_metrics"]["run_queue_time"] >= 0.0
        shifted = record["performance_metrics"].get("run_queue_time") or 0.0
        if found["duration"] < slept[helper] - shifted:
            pytest.fail(
                f"{record['path']}: {helper} too short (waited {shifted * 1000:.1f} ms for a "
                f"CPU)\n{_outline(nodes)}"
            )
        assert any(
            n["function_name"] == "[await]" and n["depth"] > found["depth"] for n in nodes
        ), record["path"]
        assert not _named(nodes, other), f"{record['path']} holds another request's {other}"
        assert not _named(nodes, "sprig")
    print(
        f"\nasync trees: helper in {len(records)}/{len(records)}, coverage median "
        f"{statistics.median(coverage):.3f}, min {min(coverage):.3f}, max {max(coverage):.3f}"
    )
