"""The embedded MongoDB-wire-compatible server (nx-27017) that backs a one-box install.

With no MongoDB URL configured, the first process that needs the store starts
nx-27017 as a detached subprocess on loopback, with its data under
``$PYSTRUMENT_HOME/store/``; every later process (collector, notebook,
dashboard, worker, papermill kernel) finds it through ``server.json`` there and
connects by URL. ``pystrument store stop`` stops it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pystrument_lab.errors import StoreUnavailable

logger = logging.getLogger(__name__)

_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerState:
    pid: int
    host: str
    port: int
    data_dir: str

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _ping(url: str, timeout_ms: int = 1500) -> bool:
    from pystrument_lab.store import ping_url

    return ping_url(url, timeout_ms)


class EmbeddedServer:
    """Start, find, health-check and stop one nx-27017 server under ``home``."""

    def __init__(self, home: Path, *, port: int = 27027, host: str = "127.0.0.1") -> None:
        self.home = Path(home).expanduser()
        self.port = port
        self.host = host

    @property
    def directory(self) -> Path:
        return self.home / "store"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def state_file(self) -> Path:
        return self.directory / "server.json"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    def state(self) -> ServerState | None:
        """The running server recorded in ``server.json``, or None."""
        try:
            raw = json.loads(self.state_file.read_text())
            state = ServerState(
                pid=int(raw["pid"]),
                host=str(raw["host"]),
                port=int(raw["port"]),
                data_dir=str(raw["data_dir"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not pid_alive(state.pid):
            return None
        return state

    def status(self) -> dict[str, object]:
        state = self.state()
        if state is None:
            return {"running": False, "data_dir": str(self.data_dir)}
        return {
            "running": True,
            "healthy": _ping(state.url),
            "pid": state.pid,
            "url": state.url,
            "data_dir": state.data_dir,
            "log_file": str(self.log_file),
        }

    def ensure_running(self) -> str:
        """Reuse the running server or start one; return its URL."""
        state = self.state()
        if state is not None and _ping(state.url):
            return state.url
        if state is not None:
            # Alive but not answering: let it finish starting before giving up.
            if self._wait_healthy(state.url, state.pid, timeout=_START_TIMEOUT):
                return state.url
            raise StoreUnavailable(
                f"the embedded store (pid {state.pid}) does not answer on {state.url}; "
                f"see {self.log_file}, or run 'pystrument store stop' and try again"
            )
        return self.start()

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.port
        if port_open(self.host, port):
            # Something that is not ours holds the configured port.
            port = free_port(self.host)
            logger.warning("port %s is taken; starting the embedded store on %s", self.port, port)
        command = [
            sys.executable,
            "-c",
            "import sys; from nx_27017.nx_27017 import main; sys.exit(main())",
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "--port",
            str(port),
            "--log-file",
            str(self.log_file),
            "--pid-file",
            str(self.directory / "nx.pid"),
        ]
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        state = ServerState(process.pid, self.host, port, str(self.data_dir))
        if not self._wait_healthy(state.url, process.pid, timeout=_START_TIMEOUT):
            process.kill()
            raise StoreUnavailable(
                f"the embedded store did not start on {state.url}; its log is {self.log_file}"
            )
        self.state_file.write_text(json.dumps(state.__dict__))
        logger.info("embedded store started: %s (pid %s)", state.url, state.pid)
        return state.url

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server; True when one was running."""
        state = self.state()
        if state is None:
            self.state_file.unlink(missing_ok=True)
            return False
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(state.pid):
            time.sleep(0.05)
        if pid_alive(state.pid):
            # nx-27017 exits from its SIGTERM handler with sys.exit(), which is lost when
            # the signal lands inside a weakref callback ("Exception ignored in ..."), so
            # the server can outlive SIGTERM. Kill it, and wait until it is gone: a server
            # started on the same data directory before then refuses, seeing its pid file.
            os.kill(state.pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and pid_alive(state.pid):
                time.sleep(0.05)
            (self.directory / "nx.pid").unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        return True

    def _wait_healthy(self, url: str, pid: int, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return False
            if _ping(url, timeout_ms=500):
                return True
            time.sleep(0.1)
        return False
