"""The SQLAlchemy schema the Flask and FastAPI corpus apps share, seeded on first use.

A sqlite file per app (``CORPUS_HOME``); ``readings`` is big enough that one
aggregate over it costs well over 100 ms.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from performance_monitor.sqlalchemy import instrument_engine
from sqlalchemy import Engine, Float, ForeignKey, Integer, String, create_engine, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

AUTHORS = 40
BOOKS_PER_AUTHOR = 5
SHELVES = 30
ITEMS_PER_SHELF = 4
READINGS = 80_000


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    title: Mapped[str] = mapped_column(String(60))
    price: Mapped[float] = mapped_column(Float)


class Shelf(Base):
    __tablename__ = "shelves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(40))
    items: Mapped[list[Item]] = relationship(lazy="select")


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"))
    name: Mapped[str] = mapped_column(String(40))


class Reading(Base):
    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sensor: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)


def open_engine(name: str) -> Engine:
    """The app's instrumented engine on ``$CORPUS_HOME/<name>.sqlite3``, seeded if new."""
    path = Path(os.environ.get("CORPUS_HOME", ".")) / f"{name}.sqlite3"
    fresh = not path.exists()
    engine = create_engine(f"sqlite:///{path}")
    if fresh:
        _seed(engine)
    return instrument_engine(engine)


def _seed(engine: Engine) -> None:
    rng = random.Random(7)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(Author), [{"id": i, "name": f"author {i}"} for i in range(1, AUTHORS + 1)]
        )
        connection.execute(
            insert(Book),
            [
                {"author_id": a, "title": f"title {a}-{b}", "price": rng.uniform(5, 50)}
                for a in range(1, AUTHORS + 1)
                for b in range(BOOKS_PER_AUTHOR)
            ],
        )
        connection.execute(
            insert(Shelf), [{"id": s, "label": f"shelf {s}"} for s in range(1, SHELVES + 1)]
        )
        connection.execute(
            insert(Item),
            [
                {"shelf_id": s, "name": f"item {s}-{i}"}
                for s in range(1, SHELVES + 1)
                for i in range(ITEMS_PER_SHELF)
            ],
        )
        connection.execute(
            insert(Reading),
            [{"sensor": rng.randrange(5000), "value": rng.random()} for _ in range(READINGS)],
        )
