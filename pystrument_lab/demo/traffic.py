"""The traffic driver: a deterministic mix of requests over every endpoint of the demo shop.

The mix is a fixed cycle of :data:`CYCLE_LENGTH` requests that starts with
every endpoint once, so any run of ``len(ENDPOINTS)`` or more requests
reaches them all; ids in paths are derived from the request's position.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from pystrument_lab.demo.app import VERSION_HEADER
from pystrument_lab.demo.shopdb import ORDER_COUNT, PRODUCT_COUNT, USER_COUNT


@dataclass(frozen=True)
class PlannedRequest:
    method: str
    route: str
    path: str
    body: dict[str, Any] | None = None


PathMaker = Callable[[int], str]
_SEARCHES = ("smart lamp", "eco kettle", "vintage wooden chair", "solar travel tent")


def _search(offset: int) -> PathMaker:
    return lambda i: f"/api/search?q={_SEARCHES[(i + offset) % len(_SEARCHES)]}"


def _product(stride: int) -> PathMaker:
    return lambda i: f"/api/products/{1 + (i * stride) % PRODUCT_COUNT}"


def _user(stride: int) -> PathMaker:
    return lambda i: f"/api/users/{1 + (i * stride) % USER_COUNT}"


# (method, route template as FastAPI spells it, path of the i-th request).
# The first entries name every endpoint once; the rest weight the mix.
_MIX: tuple[tuple[str, str, PathMaker], ...] = (
    ("GET", "/health", lambda i: "/health"),
    ("GET", "/api/products", lambda i: f"/api/products?limit=20&offset={(i * 20) % PRODUCT_COUNT}"),
    ("GET", "/api/search", _search(0)),
    ("GET", "/api/users/{user_id}", _user(1)),
    ("GET", "/api/orders", lambda i: "/api/orders"),
    ("GET", "/api/products/{product_id}", _product(7)),
    ("GET", "/api/report", lambda i: "/api/report"),
    ("GET", "/api/categories", lambda i: "/api/categories"),
    (
        "GET",
        "/api/recommendations/{user_id}",
        lambda i: f"/api/recommendations/{1 + i % USER_COUNT}",
    ),
    ("GET", "/api/users", lambda i: "/api/users"),
    ("GET", "/api/orders/{order_id}", lambda i: f"/api/orders/{1 + i % ORDER_COUNT}"),
    ("POST", "/api/cart/quote", lambda i: "/api/cart/quote"),
    ("GET", "/api/export", lambda i: "/api/export"),
    ("GET", "/api/stats/summary", lambda i: "/api/stats/summary"),
    ("GET", "/api/search", _search(1)),
    ("GET", "/api/products/{product_id}", _product(13)),
    ("GET", "/api/search", _search(2)),
    ("GET", "/health", lambda i: "/health"),
    ("GET", "/api/users/{user_id}", _user(3)),
    ("GET", "/api/products", lambda i: "/api/products?limit=50"),
)
CYCLE_LENGTH = len(_MIX)
ENDPOINTS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((m, r) for m, r, _ in _MIX))


def _cart(i: int) -> dict[str, Any]:
    return {
        "items": [
            {"product_id": 1 + (i * 11 + k) % PRODUCT_COUNT, "quantity": 1 + k} for k in range(3)
        ]
    }


def planned_request(i: int) -> PlannedRequest:
    """The ``i``-th request of the mix (0-based)."""
    method, route, make_path = _MIX[i % CYCLE_LENGTH]
    body = _cart(i) if method == "POST" else None
    return PlannedRequest(method, route, make_path(i), body)


def request_plan(count: int) -> list[PlannedRequest]:
    """The first ``count`` requests of the mix."""
    return [planned_request(i) for i in range(count)]


def expected_counts(count: int) -> Counter[tuple[str, str]]:
    """How many requests each (method, route) receives in a plan of ``count`` requests."""
    return Counter((request.method, request.route) for request in request_plan(count))


def send(client: httpx.Client, request: PlannedRequest, version: str) -> int:
    """Send one request to the given app version; returns the status code."""
    response = client.request(
        request.method,
        request.path,
        json=request.body,
        headers={VERSION_HEADER: version},
    )
    return response.status_code


def drive(base_url: str, version: str, plan: Iterable[PlannedRequest]) -> Counter[int]:
    """Send the plan in order, one request at a time; returns a count per status code."""
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for request in plan:
            statuses[send(client, request, version)] += 1
    return statuses


def drive_steadily(
    base_url: str, versions: tuple[str, ...], *, rate: float, should_stop: Callable[[], bool]
) -> int:
    """Gentle endless traffic, alternating versions, ``rate`` requests a second; returns the count."""
    sent = 0
    interval = 1.0 / rate
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not should_stop():
            started = time.monotonic()
            request = planned_request(sent // len(versions))
            # The server may be stopping or busy: keep a steady pace regardless.
            with contextlib.suppress(httpx.HTTPError):
                send(client, request, versions[sent % len(versions)])
            sent += 1
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return sent
