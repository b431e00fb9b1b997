"""A tiny real HTTP collector stand-in on loopback: records what the SDK sends.

``mode`` switches its behaviour at runtime: "ok", "error" (HTTP 500),
"reject" (HTTP 422) or "slow" (sleeps ``delay`` seconds before answering).
The ``sink`` fixture gives a test its own, closed at its end after the
monitors flushed to it.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.utils.sdk_guard import close_monitors


class Sink:
    def __init__(self, *, sampling_rate: float = 1.0, enabled: bool = True) -> None:
        self.mode = "ok"
        self.delay = 10.0
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.remote_config = {"enabled": enabled, "sampling_rate": sampling_rate}
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, data: Any) -> None:
                body = json.dumps({"code": 0 if status < 400 else 10000, "msg": "", "data": data})
                raw = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                try:
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the SDK gave up waiting (timeout): expected with mode "slow"

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                payload = json.loads(raw) if raw else None
                mode = sink.mode
                if mode == "slow":
                    time.sleep(sink.delay)
                with sink._lock:
                    sink.requests.append((method, self.path, dict(self.headers), payload, mode))
                if mode == "error":
                    self._answer(500, None)
                elif mode == "reject":
                    self._answer(422, None)
                elif method == "GET":
                    self._answer(200, sink.remote_config)
                else:
                    self._answer(200, {"accepted": 1})

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self, path_part: str, mode: str = "ok") -> list[Any]:
        with self._lock:
            return [
                p
                for m, path, _, p, md in self.requests
                if m == "POST" and path_part in path and md == mode
            ]

    def records(self) -> list[dict[str, Any]]:
        return [r for payload in self.posts("/collect") for r in payload["records"]]

    def metric_points(self) -> list[dict[str, Any]]:
        return [m for payload in self.posts("/metrics") for m in payload["metrics"]]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    close_monitors(timeout=0.5)  # flush while the sink still listens
    server.close()
