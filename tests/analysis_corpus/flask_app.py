"""The Flask corpus app (gunicorn, sync workers): SQLAlchemy, Jinja2, httpx, threads.

Each route's planted bottleneck is declared in :mod:`tests.analysis_corpus.cases`;
helpers are named for what they are to the app, never for what they cost.
"""

from __future__ import annotations

import json
import operator
import os
import queue
import random
import re
import threading
import time
from typing import Any

import httpx
from flask import Flask
from jinja2 import Environment
from performance_monitor.flask import PerformanceMiddleware
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.analysis_corpus.sa_schema import Author, Book, Shelf, open_engine

engine = open_engine("flask")
downstream = httpx.Client(base_url=os.environ.get("CORPUS_DOWNSTREAM", ""), timeout=10.0)
app = Flask(__name__)

_rng = random.Random(11)
LOG_TEXT = "\n".join(
    f"ts={i} level={_rng.choice(['info', 'warn'])} user=u{_rng.randrange(900)} "
    f"took={_rng.random():.4f} path=/p/{_rng.randrange(50)}/x?q={_rng.randrange(10**6)}"
    for i in range(7_500)
)
LOG_FIELD = re.compile(r"(\w+)=((?:[\w/.?=]|\d)+)\s?")
FEED = [
    {"id": i, "name": f"entry {i}", "tags": [f"t{i % 7}", f"t{i % 11}"], "score": i * 0.5}
    for i in range(1_000)
]
CATALOGUE: list[dict[str, Any]] = [{"sku": f"s{i}", "score": _rng.random()} for i in range(8_000)]
PAGE = Environment(autoescape=True).from_string(
    "<table>{% for row in rows %}<tr><td>{{ row.name|title }}</td>"
    "<td>{{ '%.2f'|format(row.score) }}</td><td>{{ row.tags|join(', ')|upper }}</td>"
    "</tr>{% endfor %}</table>"
)
_held: list[bytearray] = []
READINGS = [i % 200 for i in range(100_000)]

_vault = threading.Lock()
_keeper_jobs: queue.Queue[tuple[float, threading.Event]] = queue.Queue()


def _keeper() -> None:
    while True:
        hold, taken = _keeper_jobs.get()
        with _vault:
            taken.set()
            time.sleep(hold)


threading.Thread(target=_keeper, daemon=True).start()


def gather_rows() -> list[dict[str, Any]]:
    with Session(engine) as session:
        authors = session.scalars(select(Author).order_by(Author.id)).all()
        rows = []
        for author in authors:
            books = session.scalars(select(Book).where(Book.author_id == author.id)).all()
            rows.append({"author": author.name, "books": len(books)})
        return rows


def survey() -> int:
    with Session(engine) as session:
        total = 0
        for shelf in session.scalars(select(Shelf).order_by(Shelf.id)).all():
            total += len(shelf.items)
        return total


def assemble() -> list[str]:
    with Session(engine) as session:
        ids = session.scalars(select(Book.id).order_by(Book.id).limit(40)).all()
        return [session.scalars(select(Book.title).where(Book.id == i)).one() for i in ids]


def reckon() -> list[list[float]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT sensor, COUNT(DISTINCT round(value, 3)), AVG(value) FROM readings "
                "GROUP BY sensor ORDER BY 2 DESC, 3 DESC LIMIT 5"
            )
        )
        return [list(row) for row in rows]


def fold(n: int) -> int:
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1_000_003
    return acc


def sift() -> int:
    return len(LOG_FIELD.findall(LOG_TEXT))


def shape() -> int:
    return len(json.dumps(FEED, indent=1, sort_keys=True))


def consult() -> int:
    return len(downstream.get("/", params={"ms": 150}).content)


def linger() -> str:
    time.sleep(0.12)
    return "rested"


def tend() -> int:
    taken = threading.Event()
    _keeper_jobs.put((0.12, taken))
    taken.wait(5)
    with _vault:
        return len(_held)


def pack() -> int:
    chunks = []
    for _ in range(15_000):
        chunks.append(bytearray(4096))
    total = 0
    for chunk in chunks:
        total += len(chunk)
    return total


def keep() -> int:
    page = []
    for _ in range(12_500):
        page.append(bytearray(4096))
    _held.extend(page)
    return len(_held)


def compose() -> int:
    return len(PAGE.render(rows=FEED))


def collate() -> list[str]:
    picked: list[str] = []
    for position in range(36):
        ranking = sorted(CATALOGUE, key=operator.itemgetter("score"))
        picked.append(ranking[position]["sku"])
    return picked


def nudge(x: int) -> int:
    y = (x * 3 + 1) & 255
    y ^= y >> 2
    y = (y * 5 + x) % 251
    return (y + x) & 127


def mesh(values: list[int]) -> int:
    total = 0
    for value in values:
        total ^= nudge(value)
    return total


def descend(depth: int) -> int:
    if depth == 0:
        return 1
    return descend(depth - 1) + depth % 3


def lookup_count() -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Author)) or 0)


@app.get("/ready")
def ready() -> dict[str, Any]:
    return {}


@app.get("/f/orders")
def orders() -> dict[str, Any]:
    return {"rows": gather_rows()}


@app.get("/f/shelves")
def shelves() -> dict[str, Any]:
    return {"items": survey()}


@app.get("/f/ledger")
def ledger() -> dict[str, Any]:
    return {"titles": assemble()}


@app.get("/f/summary")
def summary() -> dict[str, Any]:
    return {"top": reckon()}


@app.get("/f/fold")
def folded() -> dict[str, Any]:
    return {"value": fold(75_000)}


@app.get("/f/scan")
def scan() -> dict[str, Any]:
    return {"fields": sift()}


@app.get("/f/export")
def export() -> dict[str, Any]:
    return {"size": shape()}


@app.get("/f/relay")
def relay() -> dict[str, Any]:
    return {"size": consult()}


@app.get("/f/pause")
def pause() -> dict[str, Any]:
    return {"state": linger()}


@app.get("/f/vault")
def vault() -> dict[str, Any]:
    return {"held": tend()}


@app.get("/f/bundle")
def bundle() -> dict[str, Any]:
    return {"bytes": pack()}


@app.get("/f/journal")
def journal() -> dict[str, Any]:
    return {"pages": keep()}


@app.get("/f/page")
def page() -> dict[str, Any]:
    return {"length": compose()}


@app.get("/f/digest")
def digest() -> dict[str, Any]:
    return {"picked": collate()}


@app.get("/f/mesh")
def meshed() -> dict[str, Any]:
    return {"total": mesh(READINGS)}


@app.get("/f/tree")
def tree() -> dict[str, Any]:
    total = 0
    for _ in range(500):
        total += descend(60)
    return {"total": total}


@app.get("/f/ping")
def ping() -> dict[str, Any]:
    return {"authors": lookup_count()}


PerformanceMiddleware(app)
