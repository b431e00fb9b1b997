"""The demo shop's SQLite database: four tables seeded deterministically at start.

The sizes are module constants because the demo's tests assert against them
(``/api/orders`` issues exactly ``ORDER_COUNT + 1`` queries).
"""

from __future__ import annotations

import random
from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
)

USER_COUNT = 40
PRODUCT_COUNT = 600
ORDER_COUNT = 30
ITEMS_PER_ORDER = 4
CATEGORIES = ("books", "garden", "kitchen", "music", "outdoor", "toys")
_WORDS = (
    "classic", "compact", "deluxe", "eco", "ultra", "smart", "vintage", "steel",
    "wooden", "travel", "family", "pro", "mini", "solar", "quiet", "rapid",
)  # fmt: skip
_NOUNS = ("lamp", "kettle", "chair", "guitar", "puzzle", "tent", "novel", "hose", "mug", "kite")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(80), nullable=False),
    Column("email", String(120), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(120), nullable=False),
    Column("category", String(40), nullable=False),
    Column("description", String(400), nullable=False),
    Column("price", Float, nullable=False),
    Column("stock", Integer, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("status", String(20), nullable=False),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("product_id", ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Float, nullable=False),
)


def create_shop_database(path: Path) -> Engine:
    """A new SQLite database at ``path`` with every table created and seeded."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    metadata.create_all(engine)
    seed(engine)
    return engine


def seed(engine: Engine, *, seed_value: int = 7) -> None:
    """Fill the tables with the same rows every time (a fixed random seed)."""
    rng = random.Random(seed_value)
    product_rows = [_product(rng, i) for i in range(1, PRODUCT_COUNT + 1)]
    order_rows = [
        {"id": i, "user_id": rng.randint(1, USER_COUNT), "status": rng.choice(("paid", "shipped"))}
        for i in range(1, ORDER_COUNT + 1)
    ]
    item_rows = [
        {
            "order_id": order,
            "product_id": (product := rng.randint(1, PRODUCT_COUNT)),
            "quantity": rng.randint(1, 5),
            "unit_price": product_rows[product - 1]["price"],
        }
        for order in range(1, ORDER_COUNT + 1)
        for _ in range(ITEMS_PER_ORDER)
    ]
    with engine.begin() as conn:
        conn.execute(insert(users), [_user(i) for i in range(1, USER_COUNT + 1)])
        conn.execute(insert(products), product_rows)
        conn.execute(insert(orders), order_rows)
        conn.execute(insert(order_items), item_rows)


def _user(index: int) -> dict[str, object]:
    return {"id": index, "name": f"user{index:03d}", "email": f"user{index:03d}@shop.example"}


def _product(rng: random.Random, index: int) -> dict[str, object]:
    words = rng.sample(_WORDS, 3)
    noun = rng.choice(_NOUNS)
    return {
        "id": index,
        "name": f"{words[0]} {noun}",
        "category": rng.choice(CATEGORIES),
        "description": f"A {words[1]} {noun}, {words[2]} finish, model {index}",
        "price": round(rng.uniform(2.0, 250.0), 2),
        "stock": rng.randint(0, 500),
    }
