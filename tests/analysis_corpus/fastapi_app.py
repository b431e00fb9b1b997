"""The FastAPI corpus app (uvicorn): async and sync endpoints, httpx, SQLAlchemy, executors.

Each route's planted bottleneck is declared in :mod:`tests.analysis_corpus.cases`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi import FastAPI
from performance_monitor.fastapi import PerformanceMiddleware
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.analysis_corpus.sa_schema import Author, Book, open_engine

engine = open_engine("fastapi")
base_url = os.environ.get("CORPUS_DOWNSTREAM", "")
remote = httpx.AsyncClient(base_url=base_url, timeout=10.0)
remote_blocking = httpx.Client(base_url=base_url, timeout=10.0)
workers = ThreadPoolExecutor(max_workers=1)
_stash: list[bytearray] = []


@dataclasses.dataclass
class Line:
    sku: str
    quantity: int
    tags: list[str]


@dataclasses.dataclass
class Order:
    id: int
    customer: str
    lines: list[Line]


ORDERS = [
    Order(i, f"c{i % 97}", [Line(f"s{i}-{j}", j, [f"t{j}", f"u{i % 5}"]) for j in range(4)])
    for i in range(400)
]

app = FastAPI()


async def canvass() -> int:
    response = await remote.get("/", params={"ms": 400})
    return len(response.content)


async def drift() -> str:
    await asyncio.sleep(0.12)
    return "settled"


async def glance() -> int:
    return len(remote_blocking.get("/", params={"ms": 150}).content)


def _chore(n: int) -> int:
    time.sleep(0.025)
    return n


async def convene() -> int:
    loop = asyncio.get_running_loop()
    done = await asyncio.gather(*(loop.run_in_executor(workers, _chore, n) for n in range(6)))
    return sum(done)


def flatten() -> int:
    total = 0
    for order in ORDERS:
        total += len(dataclasses.asdict(order)["lines"])
    return total


def enrol() -> list[int]:
    with Session(engine) as session:
        counts = []
        for author in session.scalars(select(Author).order_by(Author.id)).all():
            books = session.scalars(select(Book.id).where(Book.author_id == author.id)).all()
            counts.append(len(books))
        return counts


async def amass() -> int:
    page = []
    for _ in range(12_500):
        page.append(bytearray(4096))
    _stash.extend(page)
    return len(_stash)


async def receive() -> str:
    inbox: asyncio.Queue[str] = asyncio.Queue()
    asyncio.get_running_loop().call_later(0.12, inbox.put_nowait, "parcel")
    return await inbox.get()


def title_of(book_id: int) -> str | None:
    with Session(engine) as session:
        return session.scalar(select(Book.title).where(Book.id == book_id))


@app.get("/ready")
async def ready() -> dict[str, Any]:
    return {}


@app.get("/a/quote")
async def quote() -> dict[str, Any]:
    return {"size": await canvass()}


@app.get("/a/rest")
async def rest() -> dict[str, Any]:
    return {"state": await drift()}


@app.get("/a/peek")
async def peek() -> dict[str, Any]:
    return {"size": await glance()}


@app.get("/a/batch")
async def batch() -> dict[str, Any]:
    return {"total": await convene()}


@app.get("/a/flatten")
def flattened() -> dict[str, Any]:
    return {"lines": flatten()}


@app.get("/a/members")
def members() -> dict[str, Any]:
    return {"counts": enrol()}


@app.get("/a/hoard")
async def hoard() -> dict[str, Any]:
    return {"pages": await amass()}


@app.get("/a/inbox")
async def inbox() -> dict[str, Any]:
    return {"got": await receive()}


@app.get("/a/status")
async def status() -> dict[str, Any]:
    return {"ok": True}


@app.get("/a/item/{book_id}")
def item(book_id: int) -> dict[str, Any]:
    return {"title": title_of(book_id)}


app.add_middleware(PerformanceMiddleware)
