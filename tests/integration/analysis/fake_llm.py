"""An OpenAI-compatible chat-completions server on loopback, scripted by the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VALID_ANSWER: dict[str, Any] = {
    "performance_score": 42,
    "bottleneck_analysis": [
        {
            "type": "computation",
            "severity": "high",
            "function": "compute_report_statistics",
            "description": "quadratic loop over the rows",
            "impact": 0.9,
        },
    ],
    "optimization_suggestions": [
        {
            "category": "algorithm",
            "priority": "high",
            "title": "Use a set",
            "description": "membership tests on a list are O(n)",
            "code_example": "seen = set(rows)",
            "expected_improvement": "10x",
        },
    ],
    "risk_assessment": {
        "current_risks": ["slow reports"],
        "potential_issues": ["timeouts"],
        "recommendations": ["use a set"],
    },
    "confidence_score": 0.8,
}


class FakeLLM:
    """``replies`` is a list of (status, content, delay); the last one repeats."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.replies: list[tuple[int, str, float]] = [(200, json.dumps(VALID_ANSWER), 0.0)]
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *replies: tuple[int, str, float]) -> None:
        self.replies = list(replies)

    def next_reply(self) -> tuple[int, str, float]:
        with self.lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def prompts(self) -> list[str]:
        return ["\n".join(m["content"] for m in r["messages"]) for r in self.requests]


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            with fake.lock:
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            status, content, delay = fake.next_reply()
            if delay:
                time.sleep(delay)
            if status != 200:
                payload = {"error": {"message": content, "type": "server_error"}}
            else:
                payload = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "test-model"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                }
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.server.daemon_threads = True
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def write_config(
    path: Any, url: str, *, timeout: float = 5.0, default: str = "fake", **extra: Any
) -> str:
    import yaml

    config = {
        "default_service": default,
        "services": {
            "fake": {
                "provider": "custom",
                "model": "test-model",
                "endpoint": url,
                "timeout": timeout,
                "headers": {"Authorization": "Bearer ${FAKE_LLM_TOKEN}"},
            },
        },
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)
