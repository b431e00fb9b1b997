"""A small real FastAPI service with a SQLite database (SQLAlchemy) for the SDK tests."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from performance_monitor.fastapi import PerformanceMiddleware
from performance_monitor.sqlalchemy import instrument_engine
from sqlalchemy import create_engine, text

SLEEP = 0.05
background_done: list[float] = []


def create_app(settings: dict[str, Any] | None, db_path: Path) -> FastAPI:
    app = FastAPI()
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)"))
        if not conn.execute(text("SELECT COUNT(*) FROM items")).scalar():
            conn.execute(
                text(
                    "INSERT INTO items (name) VALUES " + ",".join(f"('item{i}')" for i in range(50))
                )
            )
    instrument_engine(engine)

    @app.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, Any]:
        await asyncio.sleep(SLEEP)
        return {"id": user_id, "name": f"user{user_id}"}

    @app.get("/sync-users/{user_id}")
    def get_user_sync(user_id: int) -> dict[str, Any]:
        time.sleep(SLEEP)
        return {"id": user_id}

    @app.get("/items")
    def list_items(n: int = 5) -> dict[str, Any]:
        names = []
        with engine.connect() as conn:
            for i in range(1, n + 1):
                names.append(
                    conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": i}).scalar()
                )
        return {"items": names}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def generate() -> Any:
            for i in range(5):
                yield f"chunk-{i}\n".encode()

        return StreamingResponse(generate(), media_type="text/plain")

    @app.post("/upload")
    async def upload(file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
        data = await file.read()
        return {"name": file.filename, "size": len(data), "first": data[:10].decode()}

    @app.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return {"received": payload, "api_token": "resp-secret"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/old")
    async def old() -> RedirectResponse:
        return RedirectResponse("/users/1")

    @app.get("/with-background")
    async def with_background(tasks: BackgroundTasks) -> JSONResponse:
        def slow_task() -> None:
            time.sleep(0.3)
            background_done.append(time.time())

        tasks.add_task(slow_task)
        return JSONResponse({"queued": True})

    if settings is not None:
        app.add_middleware(PerformanceMiddleware, **settings)
    return app


def app_from_env() -> FastAPI:
    """For uvicorn --factory; SDK settings from PYSTRUMENT_* environment variables."""
    return create_app({}, Path(os.environ["TEST_DB_PATH"]))
