"""Real components for tests: an embedded store server and a collector in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pystrument_lab.embedded import free_port


class CollectorProcess:
    """``uvicorn collector.app:app`` on a free loopback port; stop() kills it, start() brings it back."""

    def __init__(self, mongo_url: str, database: str, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = "test-admin-token-" + os.urandom(6).hex()
        self.log_path = home / f"collector-{self.port}.log"
        self.env = {
            **os.environ,
            "PYSTRUMENT_MONGODB_URL": mongo_url,
            "PYSTRUMENT_DATABASE": database,
            "PYSTRUMENT_HOME": str(home),
            "PYSTRUMENT_ADMIN_TOKEN": self.admin_token,
            "PYSTRUMENT_STORE_TIMEOUT_MS": "1000",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def start(self, timeout: float = 30.0) -> None:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "collector.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
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

    def stop(self, kill: bool = True) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=15)
        self.process = None

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def create_project(self, name: str, **body: object) -> dict:
        response = httpx.post(
            self.url + "/api/v1/projects",
            json={"name": name, **body},
            headers=self.admin_headers,
            timeout=30.0,
        )
        payload = response.json()
        assert payload["code"] == 0, payload
        return payload["data"]
