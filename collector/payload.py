"""Turn an SDK request body into plain, bounded Python data, off the event loop.

The body is hostile until this module has returned: it may be a gzip bomb,
nest a thousand levels, carry NaN, numbers beyond int64 or lone surrogates.
:func:`parse_body` runs in a worker thread and either returns JSON data with
valid Unicode in every key and value and depth within :data:`MAX_JSON_DEPTH`,
or raises a
:class:`ParameterError`. Numbers (NaN, Infinity, beyond int64) pass through to
the schemas, which refuse the record that holds them by field.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from pystrument_lab.errors import ErrorCode, ParameterError

MAX_JSON_DEPTH = 64
_BRACKETS = re.compile(rb'[\[\]{}"\\]')
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyTooLarge(ParameterError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body exceeds the {limit} byte limit (MAX_REQUEST_SIZE); send smaller batches",
            code=ErrorCode.PARAMETER_ERROR,
            status=413,
        )


def parse_body(raw: bytes, *, encoding: str, limit: int) -> Any:
    """Decompress (gzip or identity), bound, parse and clean one JSON body."""
    if encoding == "gzip":
        raw = _gunzip(raw, limit)
    elif encoding not in ("identity", ""):
        raise ParameterError(f"unsupported Content-Encoding {encoding!r}; send gzip or identity")
    if not raw:
        raise ParameterError("the request body is empty; send a JSON object")
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    if nesting_depth(raw) > MAX_JSON_DEPTH:
        raise ParameterError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(raw)
    except RecursionError as exc:  # defensive: the scan above already bounds depth
        raise ParameterError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParameterError(f"the body is not valid JSON: {exc}") from exc
    return clean(payload)


def _gunzip(raw: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    try:
        out = decompressor.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ParameterError(f"the gzip body is corrupt: {exc}") from exc
    if len(out) > limit:
        raise BodyTooLarge(limit)
    if not decompressor.eof:
        raise ParameterError("the gzip body is truncated")
    return out


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON text, skipping strings; linear, no recursion.

    Stops counting once past :data:`MAX_JSON_DEPTH`, so its cost is bounded by
    the body size whatever the body holds.
    """
    depth = deepest = 0
    in_string = False
    skip = -1  # the index of a byte escaped by a backslash
    for match in _BRACKETS.finditer(raw):
        index = match.start()
        if index == skip:
            continue
        char = match.group()
        if in_string:
            if char == b"\\":
                skip = index + 1
            elif char == b'"':
                in_string = False
            continue
        if char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def clean_text(text: str) -> str:
    """The text with lone surrogates (which no store can encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def clean_key(text: str) -> str:
    """A mapping key: also without NUL, which BSON keys cannot hold."""
    return clean_text(text).replace("\x00", "")


def clean(payload: Any) -> Any:
    """Every key and string cleaned; iterative, so any depth is safe.

    Numbers are left to the schemas, which bound each field (int64, finite,
    durations and sizes in range) and refuse a bad record alone, not its batch.
    """
    root: list[Any] = [payload]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, payload)]
    while stack:
        container, slot, value = stack.pop()
        if isinstance(value, str):
            container[slot] = clean_text(value)
        elif isinstance(value, dict):
            cleaned = {clean_key(key): item for key, item in value.items()}
            container[slot] = cleaned
            stack.extend((cleaned, key, item) for key, item in cleaned.items())
        elif isinstance(value, list):
            stack.extend((value, index, item) for index, item in enumerate(value))
    return root[0]
