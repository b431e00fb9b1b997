"""Call trees in other tools' formats: stored pyinstrument sessions, speedscope.

A record may carry its pyinstrument session, stored as zlib-compressed JSON of
``Session.to_json()`` (base64 of that on the wire); :func:`pyinstrument_html`
renders it with pyinstrument's own HTML view. :func:`to_speedscope` writes the
speedscope file format (https://www.speedscope.app/file-format-schema.json).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import TYPE_CHECKING, Any, Literal

from pystrument_lab.calltree import CallNode, CallTree, FrameKey, InvalidCallTree

if TYPE_CHECKING:
    from pyinstrument.session import Session

__all__ = [
    "SPEEDSCOPE_SCHEMA",
    "pyinstrument_html",
    "session_from_bytes",
    "session_to_bytes",
    "to_speedscope",
]

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


# -- pyinstrument --------------------------------------------------------------


def session_to_bytes(session: Session) -> bytes:
    """The stored form of a session: zlib-compressed ``Session.to_json()`` JSON."""
    return zlib.compress(json.dumps(session.to_json()).encode("utf-8"))


def session_from_bytes(data: bytes | str) -> Session:
    """A session from its stored form (bytes) or its wire form (base64 text)."""
    from pyinstrument.session import Session

    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else bytes(data)
        text = raw if raw.lstrip()[:1] == b"{" else zlib.decompress(raw)
        session: Session = Session.from_json(json.loads(text))
        return session
    except (binascii.Error, zlib.error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCallTree(
            f"the stored profile session is not zlib-compressed pyinstrument session JSON: {exc}"
        ) from exc


def pyinstrument_html(session: bytes | str) -> str:
    """pyinstrument's own interactive HTML page for a stored session."""
    from pyinstrument.renderers import HTMLRenderer

    page: str = HTMLRenderer().render(session_from_bytes(session))
    return page


# -- speedscope ----------------------------------------------------------------


class _Frames:
    """The speedscope ``shared.frames`` table, one entry per distinct frame."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.index: dict[FrameKey, int] = {}

    def of(self, node: CallNode) -> int:
        found = self.index.get(node.key)
        if found is None:
            found = self.index[node.key] = len(self.entries)
            entry: dict[str, Any] = {"name": node.function_name}
            if node.file_path:
                entry["file"] = node.file_path
            if node.line_number:
                entry["line"] = node.line_number
            self.entries.append(entry)
        return found


def to_speedscope(
    tree: CallTree,
    *,
    mode: Literal["evented", "sampled"] = "evented",
    name: str = "pystrument call tree",
) -> dict[str, Any]:
    """The tree as a speedscope file (a JSON-ready dict), times in seconds.

    ``evented``: each node opens at its start offset (children laid out one
    after another from their parent's start) and closes after its duration;
    the profile spans the root's duration. ``sampled``: one weighted sample
    per node with self time, its stack from the root; the weights add up to
    the root's duration. A merged tree exports its summed times.
    """
    frames = _Frames()
    if mode == "evented":
        profile = _evented(tree, frames)
    elif mode == "sampled":
        profile = _sampled(tree, frames)
    else:
        raise ValueError(f"mode must be 'evented' or 'sampled', not {mode!r}")
    profile["name"] = name
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "shared": {"frames": frames.entries},
        "profiles": [profile],
        "name": name,
        "activeProfileIndex": 0,
        "exporter": "pystrument",
    }


def _evented(tree: CallTree, frames: _Frames) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    end_value = tree.root.duration
    # (node, start, end of parent) to open, or (node, end, None) to close
    stack: list[tuple[CallNode, float, float | None]] = [(tree.root, 0.0, end_value)]
    while stack:
        node, at, limit = stack.pop()
        frame = frames.of(node)
        if limit is None:
            events.append({"type": "C", "frame": frame, "at": at})
            continue
        events.append({"type": "O", "frame": frame, "at": at})
        end = min(at + node.duration, limit)  # rounding must not leak past the parent
        stack.append((node, end, None))
        opens = []
        start = at
        for child in node.children:
            opens.append((child, start, end))
            start = min(start + child.duration, end)
        stack.extend(reversed(opens))
    return {
        "type": "evented",
        "unit": "seconds",
        "startValue": 0.0,
        "endValue": end_value,
        "events": events,
    }


def _sampled(tree: CallTree, frames: _Frames) -> dict[str, Any]:
    samples: list[list[int]] = []
    weights: list[float] = []
    stack: list[tuple[CallNode, list[int]]] = [(tree.root, [])]
    while stack:
        node, prefix = stack.pop()
        path = [*prefix, frames.of(node)]
        if node.self_time > 0:
            samples.append(path)
            weights.append(node.self_time)
        stack.extend((child, path) for child in reversed(node.children))
    return {
        "type": "sampled",
        "unit": "seconds",
        "startValue": 0.0,
        "endValue": tree.root.duration,
        "samples": samples,
        "weights": weights,
    }
