"""``pystrument up`` keeps the console quiet: banner and warnings there, access lines in files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pystrument_lab.embedded import free_port

STARTUP_SECONDS = 180.0


class Console:
    """The terminal ``up`` writes to: every line, and an event per awaited text."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        assert process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        with self.changed:
            found = self.changed.wait_for(lambda: any(text in line for line in self.lines), timeout)
        assert found, f"{text!r} not on the console:\n" + "\n".join(self.lines)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Console, dict[str, str]]]:
    env = {
        **os.environ,
        "PYSTRUMENT_HOME": str(tmp_path / "home"),
        "PYSTRUMENT_STORE_PORT": str(free_port()),
        "PYSTRUMENT_COLLECTOR_PORT": str(free_port()),
        "PYSTRUMENT_DASHBOARD_PORT": str(free_port()),
        "PYSTRUMENT_DEMO_PORT": str(free_port()),
        "PYSTRUMENT_ADMIN_TOKEN": "console-check-" + os.urandom(4).hex(),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYSTRUMENT_MONGODB_URL", None)
    env.pop("MONGODB_URL", None)
    # its own session, as a shell runs a foreground job: Ctrl-C goes to the whole group
    process = subprocess.Popen(
        [sys.executable, "-m", "pystrument_lab.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process, Console(process), env
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pystrument_lab.cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_file(path: Path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path}:\n{content[-2000:]}")


def test_console_holds_the_banner_and_the_files_hold_the_access_lines(up) -> None:
    process, console, env = up
    home = Path(env["PYSTRUMENT_HOME"])
    collector = f"http://127.0.0.1:{env['PYSTRUMENT_COLLECTOR_PORT']}"
    console.wait_for("Again any time: pystrument status", STARTUP_SECONDS)

    for _ in range(25):
        assert httpx.get(collector + "/health", timeout=10).status_code == 200
    assert httpx.get(collector + "/no-such-page", timeout=10).status_code == 404

    dashboard = f"http://127.0.0.1:{env['PYSTRUMENT_DASHBOARD_PORT']}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            answered = httpx.get(dashboard + "/no-such-dashboard-page", timeout=10).status_code
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(0.5)
    assert answered == 404

    status = _status(env)
    assert status.returncode == 0, status.stdout + status.stderr
    text = status.stdout
    assert f"admin token: {env['PYSTRUMENT_ADMIN_TOKEN']}" in text
    assert f"collector:   {collector}  (API docs: {collector}/docs)" in text
    assert f"dashboard:   http://127.0.0.1:{env['PYSTRUMENT_DASHBOARD_PORT']}" in text
    assert "health:      collector answering" in text
    demo_key = next(line for line in text.splitlines() if "demo key:" in line).split()[2]
    assert demo_key.startswith("pk_") and f"demo key:    {demo_key}" in "\n".join(console.lines)
    assert f"logs:        {home / 'logs'}" in text

    access = _wait_file(home / "logs" / "access.log", '"GET /no-such-page HTTP/1.1" 404', 30)
    assert access.count('"GET /health HTTP/1.1" 200') >= 25
    _wait_file(home / "logs" / "access.log", "404 GET /no-such-dashboard-page (127.0.0.1)", 30)
    # the demo's traffic reaches the collector; its ingest lines are access lines too
    _wait_file(home / "logs" / "access.log", '"POST /api/v1/', STARTUP_SECONDS)
    assert (home / "logs" / "collector.log").exists()
    assert "HTTP/1.1" not in (home / "logs" / "collector.log").read_text()
    assert "no-such-dashboard-page" not in (home / "logs" / "dashboard.log").read_text()

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    assert process.wait(timeout=60) == 0
    console.reader.join(10)
    shown = "\n".join(console.lines)
    assert shown.splitlines()[-1] == "stopped."
    assert "Pystrument is up." in shown and f"admin token: {env['PYSTRUMENT_ADMIN_TOKEN']}" in shown
    assert "HTTP/1.1" not in shown and "Traceback" not in shown
    assert "SchedulerNotRunningError" not in shown
    assert "exited with" not in shown
    # a warning shows once however often it repeats
    surfaced = [line for line in console.lines if line.startswith("[")]
    assert len(surfaced) == len(set(surfaced))

    after = _status(env)
    assert after.returncode == 1
    assert after.stdout.startswith("pystrument up is not running for PYSTRUMENT_HOME=")
