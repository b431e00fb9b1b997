"""Memory figures count the request's allocations, not the profiler's samples."""

from __future__ import annotations

import asyncio
import time

import httpx
import performance_monitor
from fastapi import FastAPI
from performance_monitor.fastapi import PerformanceMiddleware

from tests.utils.sink import Sink


def spin(depth: int, seconds: float) -> int:
    """Python-level work ``depth`` frames down, for ``seconds`` of this thread's CPU."""
    if depth:
        return spin(depth - 1, seconds)
    end = time.thread_time() + seconds
    total = 0
    while time.thread_time() < end:
        total += sum(range(100))
    return total


def test_a_busy_request_that_keeps_nothing_reports_almost_no_memory(sink: Sink) -> None:
    app = FastAPI()

    @app.get("/work")
    async def work(seconds: float) -> dict[str, int]:
        return {"total": spin(30, seconds)}

    monitored = PerformanceMiddleware(
        app,
        project_key="pk",
        api_endpoint=sink.url,
        sampling_rate=1.0,
        remote_config=False,
        track_memory=True,
    )

    async def drive() -> None:
        transport = httpx.ASGITransport(app=monitored)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/work?seconds=0.05")  # the first request pays for lazy imports
            # The sender builds the first record (MBs of JSON) before the second begins.
            assert await asyncio.to_thread(performance_monitor.flush, 5)
            await client.get("/work?seconds=1.0")

    asyncio.run(drive())
    assert performance_monitor.flush(5)
    [_, second] = sink.records()
    assert len(second["profile_session"]) > 0
    memory = second["performance_metrics"]["memory_usage"]
    # ≥ 1,000 samples of a ~80-frame stack: ~9 kB each when every sample keeps its own
    # copy (over 9 MB), ~0.1 kB when the profiler keeps each distinct stack once (0.1 to
    # 0.3 MB measured). The rest of the bound is what the process's other threads may
    # allocate meanwhile (tracemalloc counts them too): up to 2 MB seen on a loaded machine.
    assert memory["memory_delta"] < 3.0
    assert memory["peak_memory"] < 3.0


_KEPT: list[object] = []


def _alpha(n: int) -> None:
    _KEPT.append([bytes(1000) + bytes([i % 256]) for i in range(n)])


def _beta(n: int) -> int:
    _KEPT.append([bytes(2000) + bytes([i % 256]) for i in range(n)])
    return n


def test_sites_under_tracing_started_elsewhere_count_only_what_the_request_added(
    sink: Sink,
) -> None:
    import tracemalloc

    app = FastAPI()

    @app.get("/add")
    async def add(n: int) -> dict[str, int]:
        return {"n": _beta(n)}

    monitored = PerformanceMiddleware(
        app,
        project_key="pk",
        api_endpoint=sink.url,
        sampling_rate=1.0,
        remote_config=False,
        track_memory=True,
    )

    async def drive() -> None:
        transport = httpx.ASGITransport(app=monitored)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/add?n=10")  # lazy imports
            assert await asyncio.to_thread(performance_monitor.flush, 5)
            _alpha(1500)  # ~1.5 MB traced before the request, still held
            await client.get("/add?n=1000")

    tracemalloc.start(1)
    try:
        asyncio.run(drive())
        assert tracemalloc.is_tracing()  # not ours to stop
    finally:
        tracemalloc.stop()
        _KEPT.clear()
    assert performance_monitor.flush(5)
    second = sink.records()[1]
    sites = second["performance_metrics"]["memory_usage"]["allocations"]
    functions = [site["function"] for site in sites]
    assert functions[0] == "_beta" and "_alpha" not in functions
    assert sites[0]["file"] == __file__
    # 1,000 bytes objects and the list holding them (its header and its item array)
    assert 1000 * 2000 <= sites[0]["size"] < 1000 * 2200 and 1000 < sites[0]["count"] <= 1002
