"""The demo shop: a FastAPI service instrumented with the Pystrument SDK, with planted bottlenecks.

Each bottleneck lives in one module-level function so that analysis can name it:

====================================  ===============================  ==========================
endpoint                              function                         what is wrong
====================================  ===============================  ==========================
``GET /api/orders``                   :func:`load_order_items`         N+1 queries (one per order)
``GET /api/report``                   :func:`compute_report_statistics`  CPU-bound hot loop
``GET /api/recommendations/{id}``     :func:`fetch_recommendations`    slow downstream HTTP call
``GET /api/export``                   :func:`build_export_buffer`      tens of MB allocated
``GET /api/search``                   :func:`rank_search_results`      quadratic in version 1.1
====================================  ===============================  ==========================

The other endpoints are fast and healthy. Versions differ only in
:data:`VERSION_FEATURES`: 1.1 ranks search results by pairwise comparison.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from performance_monitor.fastapi import PerformanceMiddleware
from performance_monitor.sqlalchemy import instrument_engine
from pydantic import BaseModel, Field
from sqlalchemy import Engine, Row, func, select

from pystrument_lab.demo.shopdb import CATEGORIES, order_items, orders, products, users

VERSIONS = ("1.0", "1.1")
VERSION_FEATURES: dict[str, dict[str, bool]] = {
    "1.0": {"pairwise_ranking": False},
    "1.1": {"pairwise_ranking": True},
}
PROJECT_NAME = "demo-shop"
EXPORT_TARGET_BYTES = 24 * 1024 * 1024
REPORT_DAYS = 120
DOWNSTREAM_DELAY = 0.12
VERSION_HEADER = "x-demo-version"


@dataclass
class Shop:
    """What the endpoints share: the database, the version and the downstream service."""

    engine: Engine
    version: str
    downstream_url: str
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def pairwise_ranking(self) -> bool:
        return VERSION_FEATURES[self.version]["pairwise_ranking"]

    def client(self) -> httpx.AsyncClient:
        # Created on first use, inside the server's event loop.
        if self._client is None:
            # Idle connections are dropped after 1 s, well before uvicorn closes them (its
            # keep-alive timeout is 5 s): a request never goes out on a connection the server
            # is closing, which it answers with a reset.
            self._client = httpx.AsyncClient(
                base_url=self.downstream_url,
                timeout=10.0,
                limits=httpx.Limits(keepalive_expiry=1.0),
            )
        return self._client


class CartLine(BaseModel):
    product_id: int = Field(ge=1)
    quantity: int = Field(ge=1, le=100)


class CartQuoteRequest(BaseModel):
    items: list[CartLine]


# -- planted bottlenecks ---------------------------------------------------


def load_order_items(engine: Engine, order_id: int) -> list[dict[str, Any]]:
    """The N+1: called once per order, one query each time."""
    with engine.connect() as conn:
        rows = conn.execute(select(order_items).where(order_items.c.order_id == order_id))
        return [dict(row._mapping) for row in rows]


def compute_report_statistics(items: Sequence[Row[Any]]) -> dict[str, float]:
    """CPU-bound hot loop: a day-by-day revenue simulation in pure Python."""
    daily = []
    for day in range(REPORT_DAYS):
        season = 1.0 + 0.3 * math.sin(2 * math.pi * day / REPORT_DAYS)
        revenue = 0.0
        for item in items:
            weekly = 1.0 + 0.1 * math.cos(2 * math.pi * (day + item.product_id) / 7)
            revenue += item.quantity * item.unit_price * season * weekly / REPORT_DAYS
        daily.append(revenue)
    mean = sum(daily) / len(daily)
    variance = sum((value - mean) ** 2 for value in daily) / len(daily)
    ordered = sorted(daily)
    return {
        "days": float(len(daily)),
        "mean": round(mean, 2),
        "stddev": round(math.sqrt(variance), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "total": round(sum(daily), 2),
    }


async def fetch_recommendations(shop: Shop, user_id: int) -> list[int]:
    """A slow downstream call: the time is spent waiting, not computing."""
    response = await shop.client().get(f"/downstream/recommendations/{user_id}")
    response.raise_for_status()
    return [int(value) for value in response.json()["product_ids"]]


def build_export_buffer(rows: Sequence[Row[Any]]) -> bytes:
    """A large allocation: the whole catalogue export is built in memory."""
    lines = [
        f"{row.id},{row.name},{row.category},{row.price},{row.stock}\n".encode() for row in rows
    ]
    one_copy = b"".join(lines)
    copies = max(1, EXPORT_TARGET_BYTES // max(1, len(one_copy)))
    return b"".join([one_copy] * copies)


def rank_search_results(
    candidates: Sequence[Row[Any]], terms: Sequence[str], *, pairwise: bool
) -> list[dict[str, Any]]:
    """Score and order search hits; ``pairwise`` (1.1) ranks by comparing every pair."""
    scored = [(_relevance(row, terms), row.id, row) for row in candidates]
    if not pairwise:
        ordered = sorted(scored, key=lambda entry: (-entry[0], entry[1]))
    else:
        ranks = []
        for score, ident, row in scored:
            above = 0
            for other_score, other_id, _ in scored:
                if other_score > score or (other_score == score and other_id < ident):
                    above += 1
            ranks.append((above, score, ident, row))
        ordered = [(score, ident, row) for _, score, ident, row in sorted(ranks)]
    return [
        {"id": ident, "name": row.name, "score": round(score, 3)}
        for score, ident, row in ordered[:10]
    ]


def _relevance(row: Row[Any], terms: Sequence[str]) -> float:
    text = f"{row.name} {row.description}".lower()
    hits = sum(text.count(term) * (2.0 if term in row.name else 1.0) for term in terms)
    return float(hits + row.stock / 1e4)


# -- healthy helpers -------------------------------------------------------


def _one(engine: Engine, statement: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(statement).first()
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return dict(row._mapping)


def _all(engine: Engine, statement: Any) -> list[Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(statement))


# -- the application -------------------------------------------------------


def create_shop_app(shop: Shop) -> FastAPI:
    """The routes of one version of the shop, without instrumentation."""
    app = FastAPI(title="demo-shop", version=shop.version)
    engine = shop.engine

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": shop.version}

    @app.get("/api/categories")
    async def list_categories() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"data": list(CATEGORIES), "count": len(CATEGORIES)}

    @app.get("/api/users")
    def list_users() -> dict[str, Any]:
        rows = _all(engine, select(users).order_by(users.c.id))
        return {"data": [dict(row._mapping) for row in rows], "count": len(rows)}

    @app.get("/api/users/{user_id}")
    def get_user(user_id: int) -> dict[str, Any]:
        return _one(engine, select(users).where(users.c.id == user_id))

    @app.get("/api/products")
    def list_products(limit: int = 20, offset: int = 0) -> dict[str, Any]:
        query = select(products).order_by(products.c.id).limit(min(limit, 100)).offset(offset)
        rows = _all(engine, query)
        return {"data": [dict(row._mapping) for row in rows], "count": len(rows)}

    @app.get("/api/products/{product_id}")
    def get_product(product_id: int) -> dict[str, Any]:
        return _one(engine, select(products).where(products.c.id == product_id))

    @app.get("/api/orders")
    def list_orders() -> dict[str, Any]:
        rows = _all(engine, select(orders).order_by(orders.c.id))
        data = [{**row._mapping, "items": load_order_items(engine, row.id)} for row in rows]
        return {"data": data, "count": len(data)}

    @app.get("/api/orders/{order_id}")
    def get_order(order_id: int) -> dict[str, Any]:
        order = _one(engine, select(orders).where(orders.c.id == order_id))
        lines = _all(engine, select(order_items).where(order_items.c.order_id == order_id))
        return {**order, "items": [dict(row._mapping) for row in lines]}

    @app.get("/api/search")
    def search(q: str = "") -> dict[str, Any]:
        terms = [term for term in q.lower().split() if term]
        candidates = _all(engine, select(products))
        hits = rank_search_results(candidates, terms, pairwise=shop.pairwise_ranking)
        return {"query": q, "data": hits, "count": len(hits)}

    # ``async`` on purpose: the SDK measures cpu_time on the event-loop thread only,
    # so a CPU-bound ``def`` endpoint (run in the thread pool) would look idle.
    @app.get("/api/report")
    async def report() -> dict[str, Any]:
        items = _all(engine, select(order_items))
        return {"statistics": compute_report_statistics(items)}

    @app.get("/api/recommendations/{user_id}")
    async def recommendations(user_id: int) -> dict[str, Any]:
        product_ids = await fetch_recommendations(shop, user_id)
        return {"user_id": user_id, "product_ids": product_ids}

    @app.get("/api/export")
    def export() -> dict[str, Any]:
        buffer = build_export_buffer(_all(engine, select(products).order_by(products.c.id)))
        return {"bytes": len(buffer), "crc32": zlib.crc32(buffer)}

    @app.post("/api/cart/quote")
    def cart_quote(cart: CartQuoteRequest) -> dict[str, Any]:
        wanted = {line.product_id: line.quantity for line in cart.items}
        rows = _all(
            engine, select(products.c.id, products.c.price).where(products.c.id.in_(wanted))
        )
        total = sum(row.price * wanted[row.id] for row in rows)
        return {"lines": len(rows), "total": round(total, 2)}

    @app.get("/api/stats/summary")
    def stats_summary() -> dict[str, Any]:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        return {"orders": count}

    return app


def sdk_settings(project_key: str, api_endpoint: str, version: str) -> dict[str, Any]:
    """SDK keyword arguments: every request profiled, short timers so data shows up fast.

    ``track_memory`` makes the large allocation visible (``peak_memory``). The
    SDK traces allocations process-wide while any tracked request runs, so a
    peak is exact only for requests that do not overlap, which is how the
    driver sends them.
    """
    return {
        "project_key": project_key,
        "api_endpoint": api_endpoint,
        "app_version": version,
        "sampling_rate": 1.0,
        "batch_size": 25,
        "batch_timeout": 0.5,
        "metrics_interval": 2.0,
        "track_memory": True,
        "tags": {"service": PROJECT_NAME},
    }


def create_instrumented_app(
    shop: Shop, *, project_key: str, api_endpoint: str
) -> PerformanceMiddleware:
    """One version of the shop wrapped in the SDK's ASGI middleware.

    Wrapping (rather than ``app.add_middleware``) keeps a handle on the
    middleware, whose ``monitor`` the runner flushes and closes.
    """
    instrument_engine(shop.engine)
    app = create_shop_app(shop)
    return PerformanceMiddleware(app, **sdk_settings(project_key, api_endpoint, shop.version))
