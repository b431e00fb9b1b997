"""JSON for the collector: orjson when it is installed (``pystrument-sdk[fast]``), else the stdlib.

Both encoders give the same document (what ``json.loads`` reads back is
equal), so the collector never sees which one ran:

- a value neither knows is written as ``str(value)`` (the ``default=str``
  the SDK always used); datetimes, dates and times included, which orjson
  would otherwise write in its own ISO format (``OPT_PASSTHROUGH_DATETIME``),
  and dataclasses (``OPT_PASSTHROUGH_DATACLASS``); an ``Enum`` member is
  written as its value, as orjson does (the stdlib would have taken
  ``str(member)``);
- a float that is not finite (NaN, ±inf) is written as ``null``: JSON has no
  such numbers, orjson writes ``null`` and the stdlib's ``NaN`` token is
  refused by strict parsers;
- what orjson refuses — keys that are not strings, integers past 64 bits,
  strings with lone surrogates, nesting deeper than 254 — makes the whole
  payload go through the stdlib, which writes those as it always did.

The bytes may differ (orjson writes UTF-8 and ``1e16`` where the stdlib
escapes to ASCII and writes ``1e+16``); the documents do not.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

try:
    import orjson
except ImportError:  # the [fast] extra is optional
    orjson = None  # type: ignore[assignment]

#: False forces the stdlib (tests compare both modes).
use_orjson = orjson is not None

_ORJSON_OPTIONS = (
    (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson else 0
)


def _default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    # Only orjson gets here with these: the stdlib writes them as a number and a list.
    if isinstance(value, float):
        return float(value)  # a float subclass (numpy.float64, say)
    if isinstance(value, tuple):
        return list(value)  # a named tuple
    return str(value)


#: The keys the stdlib writes for non-finite float keys, kept when values are made finite.
_KEYS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _key(key: Any) -> Any:
    if isinstance(key, float) and not math.isfinite(key):
        return _KEYS.get(key, "NaN")
    return key


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (the stdlib's slow path)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_key(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _stdlib(payload: Any) -> bytes:
    try:
        text = json.dumps(payload, default=_default, allow_nan=False)
    except ValueError:
        # A NaN or an infinity somewhere (rare): written as null, as orjson does.
        text = json.dumps(_finite(payload), default=_stdlib_default_finite, allow_nan=False)
    return text.encode("utf-8")


def _stdlib_default_finite(value: Any) -> Any:
    return _finite(_default(value))


def dumps(payload: Any) -> bytes:
    """``payload`` as UTF-8 JSON bytes (see the module's doc for what both encoders agree on)."""
    if use_orjson:
        try:
            return orjson.dumps(payload, default=_default, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: see the module's doc
            pass
    return _stdlib(payload)
