"""Request-size limits, gzip bodies and the per-project rate limit."""

from __future__ import annotations

import json
import threading
import time
import zlib
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pystrument_lab.errors import ErrorCode, ParameterError, RateLimited

MAX_JSON_DEPTH = 64


class BodyTooLarge(ParameterError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body exceeds the {limit} byte limit (MAX_REQUEST_SIZE); send smaller batches",
            code=ErrorCode.PARAMETER_ERROR,
            status=413,
        )


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes: at once from Content-Length, else while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await _send_too_large(send, self.limit)
                    return
        received = 0
        limit = self.limit

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


async def _send_too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "code": int(ErrorCode.PARAMETER_ERROR),
            "msg": f"request body exceeds the {limit} byte limit (MAX_REQUEST_SIZE); send smaller batches",
            "data": None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, gunzipped when ``Content-Encoding: gzip``.

    The decompressed size is bounded by ``limit`` too, so a small gzip bomb
    is refused like a large body.
    """
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower().strip()
    if encoding == "gzip":
        decompressor = zlib.decompressobj(wbits=31)
        try:
            raw = decompressor.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise ParameterError(f"the gzip body is corrupt: {exc}") from exc
        if len(raw) > limit:
            raise BodyTooLarge(limit)
        if not decompressor.eof:
            raise ParameterError("the gzip body is truncated")
    elif encoding not in ("identity", ""):
        raise ParameterError(f"unsupported Content-Encoding {encoding!r}; send gzip or identity")
    content_type = (
        request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    )
    if content_type not in ("application/json", "text/json", "") and not content_type.endswith(
        "+json"
    ):
        raise ParameterError(
            f"unsupported Content-Type {content_type!r}; send application/json", status=415
        )
    if not raw:
        raise ParameterError("the request body is empty; send a JSON object")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParameterError(f"the body is not valid JSON: {exc}") from exc
    if _depth(payload) > MAX_JSON_DEPTH:
        raise ParameterError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    return payload


def _depth(value: Any) -> int:
    """Nesting depth, iteratively so a hostile document cannot exhaust the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > MAX_JSON_DEPTH:
                return deepest
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


class RateLimiter:
    """A token bucket per project key: ``per_minute`` requests, bursts up to the same."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                retry = (1.0 - tokens) / self.rate
                raise RateLimited(
                    f"rate limit of {int(self.capacity)} requests per minute exceeded for this project key; "
                    f"retry in {retry:.1f} s",
                    data={"retry_after": round(retry, 2)},
                )
            self._buckets[key] = (tokens - 1.0, now)
