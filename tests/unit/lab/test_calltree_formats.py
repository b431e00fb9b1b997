"""Exports: speedscope JSON and pyinstrument's HTML of a stored session."""

from __future__ import annotations

import base64
import json
import math
import time
import zlib
from typing import Any

import pytest
from pyinstrument import Profiler

from pystrument_lab.calltree import OTHER, InvalidCallTree
from pystrument_lab.treeformats import (
    SPEEDSCOPE_SCHEMA,
    pyinstrument_html,
    session_from_bytes,
    session_to_bytes,
    to_speedscope,
)
from pystrument_lab.treemerge import merge_trees
from tests.utils.tree_specs import SIMPLE, tree


def check_balanced(
    events: list[dict[str, Any]], end_value: float
) -> list[tuple[int, float, float]]:
    """Assert speedscope's evented rules; return (frame, open, close) per node."""
    open_stack: list[tuple[int, float]] = []
    spans = []
    last = 0.0
    for event in events:
        assert event["at"] >= last
        last = event["at"]
        if event["type"] == "O":
            open_stack.append((event["frame"], event["at"]))
        else:
            frame, opened = open_stack.pop()
            assert event["type"] == "C" and event["frame"] == frame
            spans.append((frame, opened, event["at"]))
    assert not open_stack
    assert last <= end_value
    return spans


def test_speedscope_evented_profile() -> None:
    t = tree(SIMPLE)
    doc = to_speedscope(t, name="GET /orders")
    assert doc["$schema"] == SPEEDSCOPE_SCHEMA
    assert doc["activeProfileIndex"] == 0
    frames = doc["shared"]["frames"]
    assert frames[0] == {"name": "app.handler", "file": "/srv/app.py", "line": 21}
    assert {"name": OTHER} in frames
    assert len(frames) == 7
    (profile,) = doc["profiles"]
    assert (profile["type"], profile["unit"], profile["name"]) == (
        "evented",
        "seconds",
        "GET /orders",
    )
    assert profile["endValue"] - profile["startValue"] == t.root.duration
    spans = check_balanced(profile["events"], profile["endValue"])
    assert len(spans) == 7
    by_name = {frames[f]["name"]: (start, end) for f, start, end in spans}
    assert by_name["app.handler"] == (0.0, 3.1875)
    assert by_name["db.execute"] == (0.0, 1.5)
    assert by_name["db.fetch"] == (1.5, 2.0)
    assert by_name["app.render"] == (2.25, 3.0)  # after load_users (2.25 s)
    json.dumps(doc)  # JSON-ready


def test_speedscope_sampled_weights_add_up_to_the_root() -> None:
    merged = merge_trees([tree(SIMPLE)] * 3)
    profile = to_speedscope(merged, mode="sampled")["profiles"][0]
    frames = to_speedscope(merged, mode="sampled")["shared"]["frames"]
    assert profile["type"] == "sampled"
    assert len(profile["samples"]) == len(profile["weights"]) == 7
    assert math.fsum(profile["weights"]) == merged.root.duration == 3 * 3.1875
    heaviest = profile["samples"][profile["weights"].index(max(profile["weights"]))]
    assert [frames[i]["name"] for i in heaviest] == ["app.handler", "app.load_users", "db.execute"]
    with pytest.raises(ValueError, match="mode"):
        to_speedscope(merged, mode="flat")  # type: ignore[arg-type]


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def handle_request() -> None:
    busy_wait(0.03)
    time.sleep(0.02)


def profiled_session() -> Any:
    profiler = Profiler(interval=0.001)
    profiler.start()
    handle_request()
    return profiler.stop()


def test_pyinstrument_html_of_a_stored_session() -> None:
    session = profiled_session()
    stored = zlib.compress(json.dumps(session.to_json()).encode())  # as the data model stores it
    html = pyinstrument_html(stored)
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "busy_wait" in html and "handle_request" in html
    wire = base64.b64encode(stored).decode()  # the record's profile_session field
    assert "busy_wait" in pyinstrument_html(wire)
    assert session_from_bytes(session_to_bytes(session)).duration == session.duration


def test_bad_session_bytes_raise_a_readable_error() -> None:
    with pytest.raises(InvalidCallTree, match="zlib-compressed"):
        pyinstrument_html(b"not a session")
