"""The application frame that called us: a SQL statement's call site.

Which frames are the application's is :func:`.application.is_application_path`,
the rule call trees, tracebacks and allocation sites use too.
"""

from __future__ import annotations

import sys
import time
from types import FrameType
from typing import Any

from .application import is_application_path


def application_caller(frame: FrameType | None, limit: int = 64) -> dict[str, object] | None:
    """``{function, file, line}`` of the innermost application frame at or above ``frame``.

    A comprehension, lambda or generator expression (a code object Python
    names ``<listcomp>``, ``<lambda>``, …) is named after the function that
    holds it, at the line inside it: the function is what a developer edits.
    """
    depth = 0
    while frame is not None and depth < limit:
        code = frame.f_code
        if is_application_path(code.co_filename):
            line = frame.f_lineno
            holder: FrameType | None = frame
            while holder is not None and holder.f_code.co_name.startswith("<"):
                holder = holder.f_back
            if holder is not None and holder.f_code.co_filename == code.co_filename:
                code = holder.f_code
            return {"function": code.co_name, "file": code.co_filename, "line": line}
        frame = frame.f_back
        depth += 1
    return None


#: How long a worker waits for the task it serves to finish suspending (see awaiting_caller).
SUSPEND_WAIT = 0.005


def awaiting_caller(
    task: Any, thread_id: int | None = None, limit: int = 64
) -> dict[str, object] | None:
    """``{function, file, line}`` of the innermost application coroutine ``task`` is awaiting in.

    For code that runs in a worker thread on behalf of a task (Django's async
    ORM hands each query to ``sync_to_async``): the thread's own stack holds no
    application frame, the task's ``await`` chain does, at the line of the
    ``await``. The worker often starts before the task has suspended: while
    its coroutines run the chain is not linked, and while they unwind it is
    half linked, so the worker waits (up to :data:`SUSPEND_WAIT`) for the task
    to suspend; a task still running after that (it did not await the worker)
    is read on ``thread_id``, the thread running its loop. None when neither
    holds an application frame.
    """
    if task is None:
        return None
    deadline = time.perf_counter() + SUSPEND_WAIT
    while True:
        coroutine = task.get_coro()
        if not getattr(coroutine, "cr_running", False):
            return _awaited_in(coroutine, limit)
        if time.perf_counter() > deadline:
            break
        time.sleep(0.0001)  # lets the task's thread take the GIL and suspend it
    if thread_id is None:
        return None
    return application_caller(sys._current_frames().get(thread_id), limit)


def _awaited_in(coroutine: Any, limit: int) -> dict[str, object] | None:
    found: dict[str, object] | None = None
    awaitable = coroutine
    depth = 0
    while awaitable is not None and depth < limit:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            break  # a future, or a C awaitable
        code = frame.f_code
        if is_application_path(code.co_filename):
            found = {"function": code.co_name, "file": code.co_filename, "line": frame.f_lineno}
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
        depth += 1
    return found
