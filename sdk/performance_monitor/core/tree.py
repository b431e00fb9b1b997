"""Turn a pyinstrument session into the flat, pruned node list of ``function_calls``.

Contract (docs/data-model.md): nodes in pre-order; ``call_id`` unique, root 0;
``duration`` includes children; ``self_time = duration - sum(children)``;
pruned children of a node are folded into one ``"[other]"`` child, so times
still add up; at most ``budget`` nodes in all.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinstrument import processors
from pyinstrument.frame import AWAIT_FRAME_IDENTIFIER, SELF_TIME_FRAME_IDENTIFIER, Frame
from pyinstrument.frame_info import frame_info_get_identifier
from pyinstrument.session import Session

from .application import SDK_DIR, is_application_path

OTHER = "[other]"
#: pyinstrument's mark on a frame whose code sets ``__tracebackhide__`` (hidden, as its processor does).
_HIDDEN = "\x01h1"

_PROCESSORS = (
    processors.remove_importlib,
    processors.remove_tracebackhide,
    processors.merge_consecutive_self_time,
    processors.aggregate_repeated_calls,
)


@dataclass
class Node:
    function_name: str
    file_path: str
    line_number: int
    duration: float
    is_application: bool
    children: list[Node] = field(default_factory=list)

    @property
    def self_time(self) -> float:
        return max(0.0, self.duration - sum(child.duration for child in self.children))


def session_tree(session: Session) -> Node | None:
    """The request's call tree from a session, rooted at the SDK middleware's frame.

    Built straight from the sample stacks, parsing only the frames at or below
    the middleware: a web stack is 30-60 frames deep and pyinstrument's
    general-purpose ``root_frame()`` parses all of them, several times the
    cost of a trivial request. Frames that set ``__tracebackhide__`` are left
    out, as pyinstrument's processor does. Sessions that never pass through
    the SDK (not from a middleware) fall back to ``root_frame()``.
    """
    records = session.frame_records
    starts = [_sdk_frame_index(stack) for stack, _ in records]
    if not records or all(start is None for start in starts):
        return _frame_tree(session)
    root: Node | None = None
    root_identifier = ""
    index: dict[int, dict[str, Node]] = {}
    for (stack, duration), start in zip(records, starts, strict=True):
        if start is None:
            continue  # a sample outside the request (e.g. the server after the response)
        identifiers = [
            frame_info_get_identifier(info) for info in stack[start:] if _HIDDEN not in info
        ]
        if root is None:
            root = _node(identifiers[0])
            root_identifier = identifiers[0]
        elif identifiers[0] != root_identifier:
            continue
        node = root
        node.duration += duration
        for identifier in identifiers[1:]:
            children = index.setdefault(id(node), {})
            child = children.get(identifier)
            if child is None:
                child = children[identifier] = _node(identifier)
                node.children.append(child)
            child.duration += duration
            node = child
    return root


def trim_to_request(session: Session) -> Session:
    """The same session with every stack starting at the SDK middleware's frame.

    The server's frames above the middleware are identical in every sample;
    dropping them shrinks the serialised session several times over and it
    still loads in pyinstrument (``Session.from_json``).
    """
    return trim_session(session, _sdk_frame_index)


def trim_session(
    session: Session,
    start_index: Callable[[list[str]], int | None],
    description: str | None = None,
) -> Session:
    """The session with each stack cut to start at ``start_index(stack)``.

    Samples whose stack has no start (``None``) are dropped; when no sample
    has one, the session is returned unchanged.
    """
    records = []
    for stack, duration in session.frame_records:
        start = start_index(stack)
        if start is not None:
            records.append((stack[start:], duration))
    if not records:
        return session
    return _with_records(session, records, records[0][0][:1], description)


def _with_records(
    session: Session,
    records: list[tuple[list[str], float]],
    start_call_stack: list[str],
    description: str | None = None,
) -> Session:
    """A copy of ``session`` holding ``records`` instead of its own samples."""
    return Session(
        frame_records=records,
        start_time=session.start_time,
        duration=session.duration,
        min_interval=session.min_interval,
        max_interval=session.max_interval,
        sample_count=len(records),
        start_call_stack=start_call_stack,
        target_description=description or session.target_description,
        cpu_time=session.cpu_time,
        sys_path=session.sys_path,
        sys_prefixes=session.sys_prefixes,
    )


def with_thread_sessions(
    session: Session, thread_sessions: list[Session], within: frozenset[str]
) -> Session:
    """The session with each thread-pool session's samples where the request awaited them.

    A ``def`` endpoint under Starlette runs in a worker thread while the
    event loop's session shows only ``[await]`` below ``run_in_threadpool``.
    Each thread session's samples (from the SDK's wrapper frame down) are put
    under the longest such await (below a function named in ``within``), and
    that await loses as much time as they add, as :func:`graft` does for the
    tree, so the session's total is unchanged and pyinstrument's own view
    shows the endpoint's code.
    """
    records = [(list(stack), duration) for stack, duration in session.frame_records]
    for thread_session in thread_sessions:
        thread = []
        for stack, duration in thread_session.frame_records:
            start = _sdk_frame_index(stack)
            thread.append((list(stack[start or 0 :]), duration))
        awaited: dict[tuple[str, ...], float] = {}
        for stack, duration in records:
            if len(stack) > 1 and stack[-1] == AWAIT_FRAME_IDENTIFIER and _below(stack, within):
                key = tuple(stack[:-1])
                awaited[key] = awaited.get(key, 0.0) + duration
        total = sum(duration for _, duration in thread)
        if not awaited or total <= 0:
            continue
        prefix = max(awaited, key=lambda key: awaited[key])
        room = awaited[prefix]
        thread_scale = min(1.0, room / total)
        await_scale = (room - total * thread_scale) / room
        merged: list[tuple[list[str], float]] = []
        placed = False
        for stack, duration in records:
            if stack[-1:] == [AWAIT_FRAME_IDENTIFIER] and tuple(stack[:-1]) == prefix:
                if not placed:
                    merged += [([*prefix, *frames], d * thread_scale) for frames, d in thread]
                    placed = True
                if await_scale > 1e-9:
                    merged.append((stack, duration * await_scale))
            else:
                merged.append((stack, duration))
        records = merged
    if records == session.frame_records:
        return session
    return _with_records(session, records, session.start_call_stack)


def _below(stack: list[str], within: frozenset[str]) -> bool:
    return any(frame.split("\x00", 1)[0] in within for frame in stack)


def _sdk_frame_index(stack: list[str]) -> int | None:
    for position, info in enumerate(stack):
        if SDK_DIR in info:
            return position
    return None


def _node(identifier: str) -> Node:
    parts = identifier.split("\x00")
    file_path = parts[1] if len(parts) > 1 else ""
    line = parts[2] if len(parts) > 2 else ""
    line_number = int(line) if line.isdigit() else 0
    return Node(parts[0], file_path, line_number, 0.0, is_application_path(file_path))


def _frame_tree(session: Session) -> Node | None:
    frame = session.root_frame()
    options: dict[str, Any] = {}
    for processor in _PROCESSORS:
        frame = processor(frame, options)
    return None if frame is None else _convert(frame)


def _convert(frame: Frame) -> Node:
    node = Node(
        function_name=frame.function or frame.identifier,
        file_path=frame.file_path or "",
        line_number=frame.line_no or 0,
        duration=frame.time,
        is_application=not frame.is_synthetic and is_application_path(frame.file_path or ""),
    )
    node.children = [
        _convert(child)
        for child in frame.children
        if child.identifier != SELF_TIME_FRAME_IDENTIFIER
    ]
    return node


def graft(parent: Node, subtree: Node, *, replacing: str = "[await]") -> None:
    """Attach ``subtree`` (e.g. a thread-pool call) under ``parent`` without adding time.

    The time comes out of ``parent``'s ``replacing`` child (the time the
    coroutine spent awaiting the thread) or, failing that, its self time, so
    the durations keep adding up.
    """
    await_node = next((c for c in parent.children if c.function_name == replacing), None)
    room = await_node.duration if await_node else parent.self_time
    if subtree.duration > room:
        _scale(subtree, room / subtree.duration if subtree.duration else 0.0)
    if await_node is not None:
        await_node.duration -= subtree.duration
        if await_node.duration <= 1e-9:
            parent.children.remove(await_node)
    parent.children.append(subtree)


def _scale(node: Node, factor: float) -> None:
    node.duration *= factor
    for child in node.children:
        _scale(child, factor)


def find_await_parent(
    root: Node, within: frozenset[str], await_name: str = "[await]"
) -> Node | None:
    """The parent of the longest ``[await]`` node below a node named in ``within``."""
    best: tuple[float, Node] | None = None
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, inside = stack.pop()
        inside = inside or node.function_name in within
        for child in node.children:
            if inside and child.function_name == await_name:
                if best is None or child.duration > best[0]:
                    best = (child.duration, node)
            else:
                stack.append((child, inside))
    return best[1] if best else None


def request_root(root: Node, sdk_dir: str) -> Node:
    """The SDK middleware's frame (the request itself), dropping the server's frames above it."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.file_path.startswith(sdk_dir):
            return node
        stack.extend(reversed(node.children))
    return root


def flatten(root: Node, budget: int = 500) -> list[dict[str, Any]]:
    """Pre-order flat nodes, keeping the heaviest ``budget`` nodes (``[other]`` included)."""
    budget = max(budget, 2)
    keep = _select(root, budget)
    nodes: list[dict[str, Any]] = []
    counter = itertools.count()

    def emit(node: Node, parent_id: int | None, depth: int, order: int) -> None:
        call_id = next(counter)
        kept = [c for c in node.children if id(c) in keep]
        pruned = sum(c.duration for c in node.children if id(c) not in keep)
        entry = {
            "call_id": call_id,
            "parent_call_id": parent_id,
            "function_name": node.function_name,
            "file_path": node.file_path,
            "line_number": node.line_number,
            "duration": node.duration,
            "self_time": node.self_time,
            "depth": depth,
            "call_order": order,
            "is_application": node.is_application,
        }
        nodes.append(entry)
        for position, child in enumerate(kept):
            emit(child, call_id, depth + 1, position)
        if len(kept) < len(node.children):
            nodes.append(
                {
                    "call_id": next(counter),
                    "parent_call_id": call_id,
                    "function_name": OTHER,
                    "file_path": "",
                    "line_number": 0,
                    "duration": pruned,
                    "self_time": pruned,
                    "depth": depth + 1,
                    "call_order": len(kept),
                    "is_application": False,
                }
            )

    emit(root, None, 0, 0)  # recursion depth is bounded by the node budget
    return nodes


def _select(root: Node, budget: int) -> set[int]:
    """Greedy: admit the heaviest frontier node while kept nodes + needed [other]s fit."""
    keep = {id(root)}
    unkept_children = {id(root): len(root.children)}
    others = 1 if root.children else 0
    tie = itertools.count()
    frontier = [(-c.duration, next(tie), c, root) for c in root.children]
    heapq.heapify(frontier)
    while frontier:
        _, _, node, parent = heapq.heappop(frontier)
        remaining_parent = unkept_children[id(parent)] - 1
        new_others = others - (1 if remaining_parent == 0 else 0) + (1 if node.children else 0)
        if len(keep) + 1 + new_others > budget:
            continue
        keep.add(id(node))
        unkept_children[id(parent)] = remaining_parent
        unkept_children[id(node)] = len(node.children)
        others = new_others
        for child in node.children:
            heapq.heappush(frontier, (-child.duration, next(tie), child, node))
    return keep
