"""The corpus apps on real servers: gunicorn (sync workers) for Flask and Django, uvicorn for FastAPI.

Each server is a subprocess with the real SDK configured by ``PYSTRUMENT_*``
variables: every request sampled, SQL and memory tracked, ``/ready`` (the
readiness probe) excluded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pystrument_lab.embedded import free_port
from tests.analysis_corpus.cases import Framework

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APPS: dict[Framework, str] = {
    "flask": "tests.analysis_corpus.flask_app:app",
    "django": "tests.analysis_corpus.django_site.wsgi:application",
    "fastapi": "tests.analysis_corpus.fastapi_app:app",
}


def sdk_environment(project_key: str, collector_url: str) -> dict[str, str]:
    """The SDK's settings for a corpus app, as environment variables."""
    settings = {
        "project_key": project_key,
        "api_endpoint": collector_url,
        "sampling_rate": "1.0",
        "track_sql": "true",
        "track_memory": "true",
        "excluded_paths": "/ready",
        "batch_timeout": "0.2",
        "metrics_interval": "1",
        "remote_config": "false",
        "max_retries": "40",
        "retry_backoff": "0.05",
        "retry_backoff_max": "0.5",
        "app_version": "corpus-1",
    }
    return {f"PYSTRUMENT_{key.upper()}": value for key, value in settings.items()}


class AppServer:
    """One corpus app served on a free loopback port until :meth:`stop`."""

    def __init__(self, framework: Framework, home: Path, env: dict[str, str]) -> None:
        self.framework = framework
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / f"{framework}-server.log"
        bind = f"127.0.0.1:{self.port}"
        if framework == "fastapi":
            command = [str(BIN / "uvicorn"), APPS[framework], "--host", "127.0.0.1"]
            command += ["--port", str(self.port), "--log-level", "warning"]
        else:
            # No control socket: gunicorn's default path is one per user, shared by every server.
            command = [str(BIN / "gunicorn"), "-k", "sync", "-w", "1", "--timeout", "120"]
            command += ["--no-control-socket"]
            command += ["-b", bind, APPS[framework]]
        base = {k: v for k, v in os.environ.items() if not k.startswith("PYSTRUMENT_")}
        self.env = {**base, **env, "PYTHONPATH": str(ROOT), "CORPUS_HOME": str(home)}
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.framework} server exited:\n{self.log()}")
            try:
                if httpx.get(self.url + "/ready", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.framework} server did not start:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, so the SDK flushes what it holds; SIGKILL if it does not exit."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]
