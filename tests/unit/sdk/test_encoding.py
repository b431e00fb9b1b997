"""The collector gets the same document from orjson and from the stdlib fallback."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from performance_monitor.core import encoding
from performance_monitor.core.transport import Transport

from tests.utils.sink import Sink

try:
    import orjson
except ImportError:  # the [fast] extra; `make test` installs it
    orjson = None

needs_orjson = pytest.mark.skipif(
    orjson is None, reason="orjson (the [fast] extra) is not installed"
)


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


class Level(enum.IntEnum):
    HIGH = 3


class Kind(str, enum.Enum):
    SQL = "sql"


class Point(NamedTuple):
    x: int
    y: float


@dataclasses.dataclass
class Site:
    file: str
    line: int


class Opaque:
    def __str__(self) -> str:
        return "opaque"


class Ratio(float):
    pass


class Name(str):
    pass


MOMENT = datetime.datetime(2026, 12, 2, 6, 30, 1, 123456, tzinfo=datetime.timezone.utc)

DOCUMENTS: dict[str, Any] = {
    "record": {
        "trace_id": "ab" * 16,
        "performance_metrics": {"total_duration": 0.0123, "cpu_time": 1e-7, "big": 1e16},
        "function_calls": [
            {"call_id": 0, "parent_call_id": None, "is_application": True, "name": "é ✓ 日本"}
        ],
        "histogram": {"3": 4},
    },
    "datetimes": {
        "at": MOMENT,
        "day": MOMENT.date(),
        "time": MOMENT.time(),
        "naive": MOMENT.replace(tzinfo=None),
    },
    "non-str keys": {7: "int", 2.5: "float", True: "bool", None: "none"},
    "non-finite": {"nan": math.nan, "inf": math.inf, "neg": [-math.inf, 1.0], "ok": -0.0},
    "non-finite key": {math.nan: 1, math.inf: 2},
    "default=str": {
        "uuid": uuid.UUID(int=7),
        "decimal": Decimal("1.10"),
        "bytes": b"\x00ab",
        "set": {3},
        "object": Opaque(),
    },
    "enums": {"plain": Colour.RED, "int": Colour.BLUE, "intenum": Level.HIGH, "strenum": Kind.SQL},
    "subclasses": {
        "float": Ratio(0.5),
        "str": Name("n"),
        "tuple": Point(1, 2.0),
        "ordered": OrderedDict(b=1, a=2),
        "dataclass": Site("app.py", 3),
    },
    "big int": {"n": 2**70},
    "lone surrogate": {"s": "a\udc80b"},
    "deep": json.loads("[" * 300 + "]" * 300),
}


def _stdlib_and_orjson(payload: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    monkeypatch.setattr(encoding, "use_orjson", False)
    stdlib = encoding.dumps(payload)
    monkeypatch.setattr(encoding, "use_orjson", True)
    fast = encoding.dumps(payload)
    return stdlib, fast


@needs_orjson
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_both_encoders_give_the_same_document(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stdlib, fast = _stdlib_and_orjson(DOCUMENTS[name], monkeypatch)
    # Strict JSON either way (no NaN token), and the same document once parsed.
    strict = json.loads(stdlib, parse_constant=lambda token: pytest.fail(f"emitted {token}"))
    assert json.loads(fast) == strict


@pytest.mark.parametrize("fast", [False, pytest.param(True, marks=needs_orjson)])
def test_what_the_documents_hold(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agreed spellings, pinned: str() for unknown types, null for non-finite floats."""
    monkeypatch.setattr(encoding, "use_orjson", fast)
    assert json.loads(encoding.dumps(DOCUMENTS["datetimes"])) == {
        "at": "2026-12-02 06:30:01.123456+00:00",
        "day": "2026-12-02",
        "time": "06:30:01.123456",
        "naive": "2026-12-02 06:30:01.123456",
    }
    assert json.loads(encoding.dumps(DOCUMENTS["non-finite"])) == {
        "nan": None,
        "inf": None,
        "neg": [None, 1.0],
        "ok": -0.0,
    }
    assert json.loads(encoding.dumps(DOCUMENTS["non-finite key"])) == {"NaN": 1, "Infinity": 2}
    assert json.loads(encoding.dumps(DOCUMENTS["non-str keys"])) == {
        "7": "int",
        "2.5": "float",
        "true": "bool",
        "null": "none",
    }
    assert json.loads(encoding.dumps(DOCUMENTS["enums"])) == {
        "plain": "red",
        "int": 2,
        "intenum": 3,
        "strenum": "sql",
    }
    assert (
        json.loads(encoding.dumps(DOCUMENTS["subclasses"]))["dataclass"]
        == "Site(file='app.py', line=3)"
    )
    assert json.loads(encoding.dumps({"n": 2**70})) == {"n": 2**70}


@needs_orjson
def test_orjson_is_used_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = orjson.dumps

    def counting(payload: Any, **kwargs: Any) -> bytes:
        calls.append(payload)
        return real(payload, **kwargs)

    monkeypatch.setattr(encoding, "use_orjson", True)
    monkeypatch.setattr(encoding.orjson, "dumps", counting)
    assert encoding.dumps({"a": 1}) == b'{"a":1}'
    assert calls == [{"a": 1}]
    monkeypatch.setattr(encoding, "use_orjson", False)
    assert encoding.dumps({"a": 1}) == b'{"a": 1}'
    assert len(calls) == 1


@pytest.mark.parametrize("fast", [False, pytest.param(True, marks=needs_orjson)])
def test_transport_posts_the_same_gzipped_document_in_both_modes(
    sink: Sink, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(encoding, "use_orjson", fast)
    payload = {"records": [DOCUMENTS["record"], DOCUMENTS["non-finite"]]}
    response = Transport(sink.url, "pk", 2).post_json("/x", payload)
    assert response.ok
    _, _, headers, posted, _ = next(r for r in sink.requests if r[1] == "/x")
    assert headers["Content-Encoding"] == "gzip"
    assert posted == json.loads(encoding._stdlib(payload))
