"""HTTP to the collector with the standard library: gzip JSON (orjson when installed), timeouts, retry policy."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any

from .. import __version__
from .encoding import dumps

COLLECT_PATH = "/api/v1/performance/collect"
METRICS_PATH = "/api/v1/performance/metrics"
CONFIG_PATH = "/api/v1/sdk/config"


@dataclass
class Response:
    status: int  # 0 when the request never got an answer
    body: Any = None

    @property
    def retryable(self) -> bool:
        """Connection errors, 5xx and 429 are retried; other 4xx are final."""
        return self.status == 0 or self.status >= 500 or self.status == 429

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Transport:
    def __init__(self, api_endpoint: str, project_key: str, timeout: float) -> None:
        self.api_endpoint = api_endpoint.rstrip("/")
        self.project_key = project_key
        self.timeout = timeout
        # Never use a proxy from the environment: the collector is addressed directly.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _headers(self) -> dict[str, str]:
        return {
            "X-Project-Key": self.project_key,
            "User-Agent": f"pystrument-sdk/{__version__}",
            "Accept": "application/json",
        }

    def post_json(self, path: str, payload: Any) -> Response:
        body = gzip_bytes(dumps(payload))
        headers = {
            **self._headers(),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        request = urllib.request.Request(
            self.api_endpoint + path, data=body, headers=headers, method="POST"
        )
        return self._send(request)

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Response:
        request = urllib.request.Request(
            self.api_endpoint + path, headers={**self._headers(), **(headers or {})}, method="GET"
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> Response:
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return Response(answer.status, _parse(answer.read()))
        except urllib.error.HTTPError as error:
            try:
                body = _parse(error.read())
            except Exception:
                body = None
            return Response(error.code, body)
        except (TimeoutError, urllib.error.URLError, OSError, ValueError):
            return Response(0)


def gzip_bytes(data: bytes) -> bytes:
    """``data`` gzipped at level 1, in C (``gzip.compress`` builds its header in Python).

    Level 1: most of the size gain for a fraction of the CPU (the GIL is shared
    with the app); wbits 31 is the gzip container.
    """
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [base*2^attempt/2, base*2^attempt]."""
    ceiling = min(cap, base * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)
