"""A small real Flask service with a SQLite database (SQLAlchemy) for the SDK tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request, stream_with_context
from performance_monitor.flask.decorators import monitor_performance
from performance_monitor.flask.middleware import PerformanceMiddleware
from performance_monitor.sqlalchemy import instrument_engine
from performance_monitor.utils.config import Config
from sqlalchemy import create_engine, text

SLEEP = 0.05


def create_app(config: dict[str, Any] | None, db_path: Path) -> Flask:
    app = Flask(__name__)
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)"))
        if not conn.execute(text("SELECT COUNT(*) FROM items")).scalar():
            conn.execute(
                text(
                    "INSERT INTO items (name) VALUES " + ",".join(f"('item{i}')" for i in range(50))
                )
            )
    instrument_engine(engine)

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int) -> Any:
        time.sleep(SLEEP)
        return jsonify(id=user_id, name=f"user{user_id}")

    @app.get("/items")
    @monitor_performance(track_sql=True, track_memory=True, custom_tags={"api_version": "v1"})
    def list_items() -> Any:
        n = int(request.args.get("n", "5"))
        names = []
        with engine.connect() as conn:
            for i in range(1, n + 1):
                names.append(
                    conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": i}).scalar()
                )
        return jsonify(items=names)

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Any:
            for i in range(5):
                yield f"chunk-{i}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.post("/upload")
    def upload() -> Any:
        file = request.files["file"]
        data = file.read()
        return jsonify(name=file.filename, size=len(data), first=data[:10].decode())

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("boom")

    @app.get("/old")
    def old() -> Any:
        return redirect("/users/1")

    if config is not None:
        PerformanceMiddleware(app, Config(config))
    return app


def app_from_env() -> Flask:
    """For gunicorn: ``tests.integration.sdk.apps.flask_app:app_from_env()``; config from PYSTRUMENT_*."""
    return create_app({}, Path(os.environ["TEST_DB_PATH"]))
