"""Request-size limits, gzip bodies and the per-project rate limit."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.payload import MAX_JSON_DEPTH, BodyTooLarge, parse_body
from pystrument_lab.errors import ErrorCode, ParameterError, RateLimited
from pystrument_lab.store import Store

__all__ = ["MAX_JSON_DEPTH", "BodyTooLarge", "BodySizeLimit", "RateLimiter", "read_json_body"]


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
    """The request's JSON body, gunzipped when ``Content-Encoding: gzip``, parsed and cleaned.

    The raw and the decompressed size are both bounded by ``limit`` (a small
    gzip bomb is refused like a large body); decompression and parsing run in
    a worker thread so a costly body never stalls the event loop.
    """
    content_type = (
        request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    )
    if content_type not in ("application/json", "text/json", "") and not content_type.endswith(
        "+json"
    ):
        raise ParameterError(
            f"unsupported Content-Type {content_type!r}; send application/json", status=415
        )
    encoding = request.headers.get("content-encoding", "identity").lower().strip()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return await run_in_threadpool(parse_body, b"".join(chunks), encoding=encoding, limit=limit)


class RateLimiter:
    """``per_minute`` requests per project key over any minute, counted in the store.

    The counts live in the store (``rate_windows``), not in the process, so
    N collector processes behind a load balancer enforce one budget, not N.
    A sliding window: the previous minute's count, weighted by how much of
    it still lies within the last 60 s, plus the current minute's. Refused
    requests are taken back out, so a client that keeps retrying gets in as
    soon as the budget allows.
    """

    def __init__(self, per_minute: int, window_seconds: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_seconds = window_seconds

    def check(self, store: Store, key: str) -> None:
        windows, into = divmod(time.time(), self.window_seconds)
        window, fraction = int(windows), into / self.window_seconds
        current, previous = store.count_in_window(key, window)
        if previous * (1.0 - fraction) + current <= self.per_minute:
            return
        store.uncount_in_window(key, window)
        retry = self._retry_after(previous, current - 1, fraction)
        raise RateLimited(
            f"rate limit of {self.per_minute} requests per minute exceeded for this project key; "
            f"retry in {retry:.1f} s",
            data={"retry_after": round(max(retry, 0.01), 2)},
        )

    def _retry_after(self, previous: int, accepted: int, fraction: float) -> float:
        """Seconds until one more request fits: previous·(1 − f) + accepted + 1 ≤ limit."""
        room = self.per_minute - accepted - 1
        if room >= 0 and previous > 0:
            return (1.0 - room / previous - fraction) * self.window_seconds
        # only in the next window, where this window's count is the previous one
        needed = 1.0 - (self.per_minute - 1) / accepted if accepted else 0.0
        return (1.0 - fraction + max(needed, 0.0)) * self.window_seconds
