"""The records that raised the same exception type, newest first, bounded and counted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from collector.ingest import validate_records
from pystrument_lab.store import Store
from tests.utils.factories import make_record


def _error(kind: str, message: str) -> dict:
    return {"type": kind, "message": message, "traceback": [], "frames_omitted": 0}


def test_other_records_with_the_same_exception(store: Store) -> None:
    key = store.create_project("same-exception", framework="flask")["project_key"]
    other_key = store.create_project("same-exception-elsewhere")["project_key"]
    now = datetime.now(timezone.utc)
    records = [
        make_record(
            trace_id=f"stock-{i}", route="/orders", status=500, timestamp=now - timedelta(minutes=i),
            error=_error("shop.StockMismatch", f"order {i} does not match"),
        )
        for i in range(14)
    ] + [
        make_record(trace_id="timeout-0", status=500, error=_error("TimeoutError", "late")),
        make_record(trace_id="fine-0"),
    ]  # fmt: skip
    valid, rejected = validate_records(records)
    assert rejected == []
    store.insert_records(key, valid)
    elsewhere, _ = validate_records(
        [make_record(trace_id="stock-x", status=500, error=_error("shop.StockMismatch", "x"))]
    )
    store.insert_records(other_key, elsewhere)

    found, total = store.same_exception_records(
        key, "shop.StockMismatch", exclude="stock-0", limit=5
    )
    assert total == 13
    assert [doc["trace_id"] for doc in found] == [
        "stock-1",
        "stock-2",
        "stock-3",
        "stock-4",
        "stock-5",
    ]
    first = found[0]
    assert first["error"] == {"message": "order 1 does not match"}
    assert (first["route"], first["status_code"]) == ("/orders", 500)
    assert first["timestamp"].tzinfo is not None
    assert abs(first["timestamp"] - (now - timedelta(minutes=1))) < timedelta(seconds=1)

    assert store.same_exception_records(key, "TimeoutError", exclude="timeout-0") == ([], 0)
    assert store.same_exception_records(key, "KeyError", exclude="fine-0") == ([], 0)
    # a type is a value, never an operator
    assert store.same_exception_records(key, {"$ne": ""}, exclude="x")[1] == 0  # type: ignore[arg-type]
