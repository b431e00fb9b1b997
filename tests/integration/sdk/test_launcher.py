"""Unmodified apps started under ``pystrument-run`` on real servers, reporting to the real collector.

The app files are written here, into the server's working directory, and
import nothing from the SDK (except the one that adds the middleware itself
on purpose). Data is read from the store after the server has exited, when
every worker has flushed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pystrument_lab.embedded import free_port
from pystrument_lab.loaders import Lab

from .helpers import call_tree, stored_records
from .launcher_apps import (
    DJANGO_ASGI,
    DJANGO_MANAGE,
    DJANGO_SETTINGS,
    DJANGO_URLS,
    DJANGO_WSGI,
    FASTAPI_APP,
    FASTAPI_EXPLICIT_APP,
    FLASK_APP,
    FLASK_EXPLICIT_APP,
)

BIN = Path(sys.executable).parent
LAUNCHER = str(BIN / "pystrument-run")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
# Uppercase hex, all-zero trace id, wrong length, version ff: each must be ignored.
MALFORMED = [
    f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",
    f"00-{'0' * 32}-{PARENT_ID}-01",
    f"00-{TRACE_ID}-{PARENT_ID}-01-extra",
    f"ff-{TRACE_ID}-{PARENT_ID}-01",
]


def _environment(settings: dict[str, Any], **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYSTRUMENT_", "PERFORMANCE_MONITOR_", "PYTHONPATH"))
    }
    env.update({f"PERFORMANCE_MONITOR_{k.upper()}": str(v) for k, v in settings.items()})
    env["PERFORMANCE_MONITOR_REMOTE_CONFIG"] = "false"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@contextmanager
def _served(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    port: int,
    probe: str,
    stop: signal.Signals = signal.SIGTERM,
) -> Iterator[tuple[str, Path]]:
    """The server's base URL and log; on exit ``stop`` to its process group, then wait for it.

    gunicorn and uvicorn stop gracefully on SIGTERM; the development servers
    (``flask run``, ``runserver``) on SIGINT, as at a terminal.
    """
    log = cwd / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [LAUNCHER, *command],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # Once connected, wait for the answer: a retry would add a request.
                httpx.get(url + probe, timeout=30.0)
                break
            except httpx.ConnectError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield url, log
    finally:
        os.killpg(process.pid, stop)  # the server and its workers flush at exit
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # A reloader's child is in the same group; wait until the group is gone.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def _records(store: Any, key: str, **query: Any) -> list[dict[str, Any]]:
    return list(store.records.find({"project_key": key, **query}))


def test_gunicorn_prefork(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    (tmp_path / "shop.py").write_text(FLASK_APP)
    port = free_port()
    command = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "shop:app"]
    with _served(command, tmp_path, _environment(sdk_settings), port, "/orders/0") as (url, _):
        first = httpx.get(f"{url}/orders/1", headers={"traceparent": VALID})
        assert first.json()["id"] == 1
        assert "server-timing" not in first.headers  # off by default
        for offset, header in enumerate(MALFORMED):
            assert httpx.get(f"{url}/orders/{2 + offset}", headers={"traceparent": header})
        # New connections until both workers answered (each connection goes to one worker).
        pids: set[int] = set()
        deadline = time.monotonic() + 30
        n = 100
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:
                client.get(f"{url}/orders/{n}")
            n += 1
            pids = {
                r["environment"]["server_info"]["pid"]
                for r in _records(store, project["project_key"])
            }
    key = project["project_key"]
    records = _records(store, key)
    pids = {r["environment"]["server_info"]["pid"] for r in records}
    assert len(pids) == 2, f"records from both workers expected, got pids {pids}"
    assert {r["route"] for r in records} == {"/orders/<int:order_id>"}
    assert len(records) == len({r["path"] for r in records})  # one record per request

    traced = _records(store, key, path="/orders/1")[0]
    assert traced["trace_id"] == TRACE_ID
    assert traced["parent_span_id"] == PARENT_ID
    assert "tally" in [n["function_name"] for n in call_tree(store, key, TRACE_ID)]
    found = Lab(store).record(TRACE_ID, project["name"])
    assert found.data["parent_span_id"] == PARENT_ID

    for offset in range(len(MALFORMED)):
        record = _records(store, key, path=f"/orders/{2 + offset}")[0]
        assert record["trace_id"] != TRACE_ID
        assert len(record["trace_id"]) == 32 and int(record["trace_id"], 16)
        assert record.get("parent_span_id") is None


def test_uvicorn_workers_server_timing(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    (tmp_path / "api.py").write_text(FASTAPI_APP)
    port = free_port()
    command = ["uvicorn", "api:app", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    env = _environment(sdk_settings, PERFORMANCE_MONITOR_SERVER_TIMING="true")
    with _served(command, tmp_path, env, port, "/items/0") as (url, _):
        traced = httpx.get(f"{url}/items/7", headers={"traceparent": VALID})
        plain = httpx.get(f"{url}/items/8", headers={"traceparent": MALFORMED[1]})
    assert traced.json()["id"] == 7
    key = project["project_key"]
    record = _records(store, key, path="/items/7")[0]
    desc = f'pystrument;desc="{TRACE_ID}-{record["span_id"]}";dur='
    assert traced.headers["server-timing"].startswith(desc)
    duration_ms = float(traced.headers["server-timing"].rsplit("dur=", 1)[1])
    assert record["trace_id"] == TRACE_ID and record["parent_span_id"] == PARENT_ID
    assert record["route"] == "/items/{item_id}"
    assert 0 < duration_ms <= record["performance_metrics"]["total_duration"] * 1000
    assert "crunch" in [n["function_name"] for n in call_tree(store, key, TRACE_ID)]
    other = _records(store, key, path="/items/8")[0]
    other_key = f"{other['trace_id']}-{other['span_id']}"
    assert plain.headers["server-timing"].startswith(f'pystrument;desc="{other_key}";')
    assert other["trace_id"] != TRACE_ID


def test_django_runserver_with_reloader(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    (tmp_path / "manage.py").write_text(DJANGO_MANAGE)
    (tmp_path / "site_settings.py").write_text(DJANGO_SETTINGS)
    (tmp_path / "site_urls.py").write_text(DJANGO_URLS)
    port = free_port()
    command = ["python", "manage.py", "runserver", f"127.0.0.1:{port}"]
    env = _environment(sdk_settings, PERFORMANCE_MONITOR_SERVER_TIMING="1")
    with _served(command, tmp_path, env, port, "/articles/0/", signal.SIGINT) as (url, _):
        traced = httpx.get(f"{url}/articles/5/", headers={"traceparent": VALID})
        plain = httpx.get(f"{url}/articles/6/", headers={"traceparent": "garbage"})
    assert traced.json()["id"] == 5
    key = project["project_key"]
    record = _records(store, key, path="/articles/5/")[0]
    assert record["route"] == "/articles/<int:pk>/"
    assert record["trace_id"] == TRACE_ID and record["parent_span_id"] == PARENT_ID
    assert record["performance_metrics"]["database_metrics"]["query_count"] == 3
    assert "article" in [n["function_name"] for n in call_tree(store, key, TRACE_ID)]
    desc = f'pystrument;desc="{TRACE_ID}-{record["span_id"]}";dur='
    assert traced.headers["server-timing"].startswith(desc)
    other = _records(store, key, path="/articles/6/")[0]
    assert other.get("parent_span_id") is None
    assert f'desc="{other["trace_id"]}-{other["span_id"]}"' in plain.headers["server-timing"]


def test_explicit_middleware_is_not_doubled(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    (tmp_path / "api.py").write_text(FASTAPI_EXPLICIT_APP)
    port = free_port()
    command = ["uvicorn", "api:app", "--host", "127.0.0.1", "--port", str(port)]
    with _served(command, tmp_path, _environment(sdk_settings), port, "/items/0") as (url, _):
        for n in range(1, 6):
            assert httpx.get(f"{url}/items/{n}").json() == {"id": n}
    key = project["project_key"]
    paths = sorted(r["path"] for r in _records(store, key) if r["path"] != "/items/0")
    assert paths == [f"/items/{n}" for n in range(1, 6)]
    counted = sum(
        doc["count"]
        for doc in store.endpoint_metrics.find({"project_key": key, "resolution": "1m"})
    )
    assert counted == len(_records(store, key))


@pytest.mark.parametrize("problem", ["sampling_rate", "project_key"])
def test_misconfiguration_warns_once(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any], problem: str
) -> None:
    (tmp_path / "shop.py").write_text(FLASK_APP)
    settings = dict(sdk_settings)
    if problem == "sampling_rate":
        settings["sampling_rate"] = "lots"
    else:
        del settings["project_key"]
    port = free_port()
    command = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "shop:app"]
    with _served(command, tmp_path, _environment(settings), port, "/orders/0") as (url, log):
        assert [httpx.get(f"{url}/orders/{n}").json()["id"] for n in range(1, 5)] == [1, 2, 3, 4]
    lines = log.read_text().splitlines()
    warnings = [line for line in lines if "unmonitored" in line]
    assert len(warnings) == 1, lines
    assert problem in warnings[0]
    assert _records(store, project["project_key"]) == []


def _metric_total(store: Any, key: str) -> int:
    found = store.endpoint_metrics.find({"project_key": key, "resolution": "1m"})
    return sum(doc["count"] for doc in found)


def test_flask_run_explicit_middleware_once_with_server_timing(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    (tmp_path / "shop.py").write_text(FLASK_EXPLICIT_APP)
    port = free_port()
    command = ["flask", "--app", "shop", "run", "--port", str(port)]
    env = _environment(sdk_settings, PERFORMANCE_MONITOR_SERVER_TIMING="yes")
    with _served(command, tmp_path, env, port, "/orders/0", signal.SIGINT) as (url, _):
        answers = [
            httpx.get(f"{url}/orders/{n}", headers={"traceparent": VALID} if n == 1 else {})
            for n in range(1, 6)
        ]
    assert [a.json()["id"] for a in answers] == [1, 2, 3, 4, 5]
    key = project["project_key"]
    records = _records(store, key)
    assert sorted(r["path"] for r in records) == [f"/orders/{n}" for n in range(6)]
    assert _metric_total(store, key) == 6
    by_path = {r["path"]: r for r in records}
    assert by_path["/orders/1"]["trace_id"] == TRACE_ID
    for n, answer in enumerate(answers, start=1):
        record = by_path[f"/orders/{n}"]
        desc = f'pystrument;desc="{record["trace_id"]}-{record["span_id"]}";dur='
        assert answer.headers["server-timing"].startswith(desc)
        assert answer.headers.get_list("server-timing") == [answer.headers["server-timing"]]


def test_gunicorn_django_explicit_middleware_once(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    settings = DJANGO_SETTINGS.replace(
        'MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]',
        'MIDDLEWARE = ["django.middleware.common.CommonMiddleware",'
        ' "performance_monitor.django.PerformanceMiddleware"]',
    )
    (tmp_path / "site_settings.py").write_text(settings)
    (tmp_path / "site_urls.py").write_text(DJANGO_URLS)
    (tmp_path / "site_wsgi.py").write_text(DJANGO_WSGI)
    port = free_port()
    command = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "site_wsgi:application"]
    with _served(command, tmp_path, _environment(sdk_settings), port, "/articles/0/") as (url, _):
        for n in range(1, 6):
            assert httpx.get(f"{url}/articles/{n}/").json()["id"] == n
        traced = httpx.get(f"{url}/articles/9/", headers={"traceparent": VALID})
    assert "server-timing" not in traced.headers
    key = project["project_key"]
    records = _records(store, key)
    assert sorted(r["path"] for r in records) == sorted(
        f"/articles/{n}/" for n in (0, 1, 2, 3, 4, 5, 9)
    )
    assert _metric_total(store, key) == 7
    assert {r["route"] for r in records} == {"/articles/<int:pk>/"}
    assert _records(store, key, path="/articles/9/")[0]["trace_id"] == TRACE_ID


def test_uvicorn_django_asgi(
    sdk_settings: dict[str, Any], tmp_path: Path, store: Any, project: dict[str, Any]
) -> None:
    (tmp_path / "site_settings.py").write_text(DJANGO_SETTINGS)
    (tmp_path / "site_urls.py").write_text(DJANGO_URLS)
    (tmp_path / "site_asgi.py").write_text(DJANGO_ASGI)
    port = free_port()
    command = ["uvicorn", "site_asgi:application", "--lifespan", "off", "--port", str(port)]
    env = _environment(sdk_settings, PERFORMANCE_MONITOR_SERVER_TIMING="true")
    key = project["project_key"]
    with _served(command, tmp_path, env, port, "/articles/0/") as (url, _):
        traced = httpx.get(f"{url}/articles/3/", headers={"traceparent": VALID})
        # Django has no lifespan protocol: read what was sent while the server runs.
        records = stored_records(store, key, 1, timeout=20, path="/articles/3/")
    assert traced.json()["id"] == 3
    assert records[0]["trace_id"] == TRACE_ID and records[0]["parent_span_id"] == PARENT_ID
    assert records[0]["route"] == "/articles/<int:pk>/"
    assert records[0]["performance_metrics"]["database_metrics"]["query_count"] == 3
    desc = f'pystrument;desc="{TRACE_ID}-{records[0]["span_id"]}";dur='
    assert traced.headers["server-timing"].startswith(desc)
