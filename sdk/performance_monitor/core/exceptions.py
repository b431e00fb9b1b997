"""What a failed request stores about its exception: type, message, a bounded traceback.

The message is redacted the way headers and query parameters are (a
``name=value`` or ``"name": value`` pair whose name is sensitive loses its
value) and cut at :data:`MAX_MESSAGE_LENGTH`; the traceback keeps the
innermost :data:`MAX_FRAMES` frames, each ``{function, file, line,
is_application}``. Built on the request thread, for sampled requests only,
so the traceback's frames are not kept alive any longer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .application import is_application_path
from .record import is_sensitive
from .redaction import REDACTED

MAX_MESSAGE_LENGTH = 1000
MAX_FRAMES = 30
MAX_TYPE_LENGTH = 200
_PAIR = re.compile(r"""(["']?)([A-Za-z_][\w.\-]{0,99})\1(\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)""")


def redact_message(message: str, extra: Iterable[str] = ()) -> str:
    """``message`` with the values of sensitive ``name=value`` pairs replaced, then bounded."""
    names = frozenset(e.lower() for e in extra)
    text = message[: MAX_MESSAGE_LENGTH * 4]
    redacted = _PAIR.sub(
        lambda m: (
            f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{REDACTED}"
            if is_sensitive(m.group(2), names)
            else m.group(0)
        ),
        text,
    )
    return redacted[:MAX_MESSAGE_LENGTH]


def exception_type(exception: BaseException) -> str:
    kind = type(exception)
    module = kind.__module__
    name = (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )
    return name[:MAX_TYPE_LENGTH]


def _frames(traceback: TracebackType | None) -> tuple[list[dict[str, Any]], int]:
    frames: list[dict[str, Any]] = []
    total = 0
    while traceback is not None:
        code = traceback.tb_frame.f_code
        frames.append(
            {
                "function": code.co_name,
                "file": code.co_filename,
                "line": traceback.tb_lineno,
                "is_application": is_application_path(code.co_filename),
            }
        )
        total += 1
        if len(frames) > MAX_FRAMES:
            frames.pop(0)  # keep the innermost: where it was raised
        traceback = traceback.tb_next
    return frames, total


def exception_info(exception: BaseException, sensitive: Iterable[str] = ()) -> dict[str, Any]:
    """The record's ``error`` field (docs/data-model.md)."""
    try:
        message = str(exception)
    except Exception:
        message = f"<{type(exception).__name__}: str() failed>"
    frames, total = _frames(exception.__traceback__)
    return {
        "type": exception_type(exception),
        "message": redact_message(message, sensitive),
        "traceback": frames,
        "frames_omitted": total - len(frames),
    }
