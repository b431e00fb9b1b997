"""``pystrument up`` and ``pystrument status``: the services in one terminal, quietly.

The console holds the banner (URLs, admin token, demo project key) and each
distinct warning or error once; everything the services print goes to
``PYSTRUMENT_HOME/logs/<service>.log`` and every HTTP access line, whichever
service wrote it (named in brackets), to ``PYSTRUMENT_HOME/logs/access.log``. ``pystrument status``
prints the banner again from ``PYSTRUMENT_HOME/up.json``, which ``up`` writes
once the collector answers and removes when it stops.

The services run in their own process group, so Ctrl-C reaches ``up`` alone and
it stops them in reverse start order (SIGTERM, then SIGKILL after 10 s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["LogRouter", "Service", "banner", "cmd_status", "cmd_up", "services_for_up"]

STATE_FILE = "up.json"
ACCESS_LOG = "access.log"
STOP_GRACE_SECONDS = 10.0

# An HTTP access line: uvicorn's `"GET /path HTTP/1.1" 200`, tornado's (Panel's)
# `404 GET /path (127.0.0.1) 0.82ms`, or one a logger named tornado.access wrote.
_ACCESS = re.compile(
    r'"[A-Z]+ \S+ HTTP/[\d.]+" \d{3}\b|\b\d{3} [A-Z]+ \S+ \(\S+\) [\d.]+ms\b|tornado\.access'
)
# A line worth the console: a log level or a Python warning/exception name.
_NOTABLE = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback|[A-Z]\w*(?:Warning|Error))\b")
_NUMBERS = re.compile(r"0x[0-9a-f]+|\d+(?:\.\d+)?")


@dataclass
class Service:
    name: str
    command: list[str]
    url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def services_for_up(settings: Any) -> list[Service]:
    """The processes ``pystrument up`` runs, in start order."""
    python = sys.executable
    cli = [python, "-m", "pystrument_lab.cli"]
    return [
        Service(
            "collector",
            [*cli, "collector"],
            url=f"{settings.collector_url}  (API docs: {settings.collector_url}/docs)",
        ),
        Service("worker", [*cli, "worker"]),
        Service("scheduler", [*cli, "scheduler"]),
        Service(
            "demo",
            [*cli, "demo"],
            url=f"http://127.0.0.1:{os.environ.get('PYSTRUMENT_DEMO_PORT', '8050')}",
        ),
        Service(
            "dashboard",
            [*cli, "dashboard"],
            url=f"http://127.0.0.1:{settings.dashboard_port}",
        ),
    ]


class LogRouter:
    """Copies each service's output to its log file; surfaces new warnings on the console.

    A warning counts as seen before when it differs only in numbers (ports,
    durations, addresses), so a warning repeated every request shows once.
    """

    def __init__(self, logs: Path, console: Callable[[str], None]) -> None:
        self.logs = logs
        self.console = console
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        logs.mkdir(parents=True, exist_ok=True)
        self.access = open(logs / ACCESS_LOG, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def follow(self, name: str, stream: IO[bytes]) -> None:
        thread = threading.Thread(
            target=self._copy, args=(name, stream), name=f"log-{name}", daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def _copy(self, name: str, stream: IO[bytes]) -> None:
        with open(self.logs / f"{name}.log", "a", encoding="utf-8") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if _ACCESS.search(line):
                    with self.lock:
                        self.access.write(f"[{name}] {line}\n")
                        self.access.flush()
                    continue
                log.write(line + "\n")
                log.flush()
                if _NOTABLE.search(line):
                    self._surface(name, line)

    def _surface(self, name: str, line: str) -> None:
        key = name + " " + _NUMBERS.sub("#", line.strip())
        with self.lock:
            if key in self.seen:
                return
            self.seen.add(key)
        self.console(f"[{name}] {line.strip()}  (more in {self.logs / (name + '.log')})")

    def close(self, timeout: float = 5.0) -> None:
        for thread in self.threads:
            thread.join(timeout)
        self.access.close()


def banner(state: dict[str, Any], *, admin_token: str) -> str:
    """The lines ``up`` prints when ready and ``status`` prints again."""
    lines = ["Pystrument is up.", f"  {'store:':<12} {state['store']}"]
    lines += [f"  {name + ':':<12} {url}" for name, url in state["urls"].items()]
    lines.append(f"  {'admin token:':<12} {admin_token}")
    if state.get("demo_key"):
        lines.append(f"  {'demo key:':<12} {state['demo_key']}  (project demo-shop)")
    lines.append(f"  {'logs:':<12} {state['logs']}")
    return "\n".join(lines)


def _wait_http(url: str, timeout: float, should_stop: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not should_stop():
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _demo_key(url: str, settings: Any) -> str | None:
    """The demo project's key, created now so the banner can show it."""
    from pystrument_lab.demo.runner import ensure_demo_project
    from pystrument_lab.store import Store

    store = Store(url, database=settings.database)
    try:
        return str(ensure_demo_project(store)["project_key"])
    finally:
        store.close()


def _stop_all(services: list[Service]) -> None:
    for service in reversed(services):
        if service.process is not None and service.process.poll() is None:
            service.process.terminate()
    for service in services:
        if service.process is not None:
            try:
                service.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


def cmd_up(_: Any) -> int:
    from pystrument_lab.embedded import EmbeddedServer
    from pystrument_lab.settings import admin_token, get_settings

    settings = get_settings()
    token = admin_token(settings)
    logs = settings.home / "logs"
    state_path = settings.home / STATE_FILE
    stopping = threading.Event()

    def console(text: str) -> None:
        print(text, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    embedded = (
        None if settings.mongodb_url else EmbeddedServer(settings.home, port=settings.store_port)
    )
    started_store = embedded is not None and embedded.state() is None
    url = str(embedded.ensure_running() if embedded is not None else settings.mongodb_url)
    env = {**os.environ, "PYSTRUMENT_MONGODB_URL": url, "PYSTRUMENT_ADMIN_TOKEN": token}
    services = services_for_up(settings)
    router = LogRouter(logs, console)
    try:
        for service in services:
            service.process = subprocess.Popen(
                service.command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches `up`, which stops the services in order
            )
            assert service.process.stdout is not None
            router.follow(service.name, service.process.stdout)
        health = f"{settings.collector_url}/health"
        if not _wait_http(health, 60, stopping.is_set):
            if not stopping.is_set():
                console(f"the collector did not come up; see {logs / 'collector.log'}")
                return 1
            return 0
        state = {
            "pid": os.getpid(),
            "store": url + ("  (embedded)" if embedded is not None else ""),
            "urls": {service.name: service.url for service in services if service.url},
            "demo_key": _demo_key(url, settings),
            "logs": str(logs),
        }
        state_path.write_text(json.dumps(state, indent=2))
        console("\n" + banner(state, admin_token=token))
        console("Again any time: pystrument status. Ctrl-C stops everything.\n")
        while not stopping.wait(0.5):
            for service in services:
                if service.process is not None and service.process.poll() is not None:
                    console(
                        f"{service.name} exited with {service.process.returncode}; "
                        f"see {logs / (service.name + '.log')}"
                    )
                    stopping.set()
    finally:
        _stop_all(services)
        router.close()
        state_path.unlink(missing_ok=True)
        if started_store and embedded is not None:
            embedded.stop()
        console("stopped.")
    return 0


def cmd_status(_: Any) -> int:
    from pystrument_lab.embedded import pid_alive
    from pystrument_lab.settings import admin_token, get_settings

    settings = get_settings()
    path = settings.home / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        state = None
    if not state or not pid_alive(int(state.get("pid", 0))):
        print(f"pystrument up is not running for PYSTRUMENT_HOME={settings.home}: start it with "
              "`make up` or `pystrument up`")  # fmt: skip
        return 1
    healthy = _wait_http(f"{settings.collector_url}/health", 2.0, lambda: False)
    print(banner(state, admin_token=admin_token(settings)))
    print(f"  {'health:':<12} collector {'answering' if healthy else 'NOT answering'}")
    return 0 if healthy else 1
