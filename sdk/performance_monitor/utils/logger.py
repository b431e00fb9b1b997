"""The SDK's logger and the guard that keeps SDK failures away from the host app.

Every piece of SDK work on the request path runs inside :func:`guard`: an
exception raised by the SDK itself is logged on the ``performance_monitor``
logger and swallowed, so a bug here can never change a response. Tests set
:data:`raise_internal_errors` (or ``PYSTRUMENT_RAISE_INTERNAL_ERRORS=1``) so that
swallowed errors still fail them, as sentry-python's test suite does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("performance_monitor")

#: Re-raise exceptions the guard would swallow (for the SDK's own tests).
raise_internal_errors: bool = os.environ.get("PYSTRUMENT_RAISE_INTERNAL_ERRORS", "") in {
    "1",
    "true",
    "yes",
}

_internal_error_count = 0


def internal_error_count() -> int:
    """How many SDK-internal exceptions the guard has swallowed in this process."""
    return _internal_error_count


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Run SDK code; log and swallow its exceptions (``what`` names the step)."""
    try:
        yield
    except Exception:
        internal_error(what)


def internal_error(what: str) -> None:
    """Call from an ``except Exception:`` block in SDK code: count, log, swallow.

    The request hot path uses this in a plain ``try`` rather than :func:`guard`,
    which allocates a generator per use.
    """
    global _internal_error_count
    _internal_error_count += 1
    if raise_internal_errors:
        raise
    logger.exception("performance_monitor: internal error while %s (ignored)", what)


class RateLimitedLogger:
    """Logs a message at most once per ``period`` seconds (per instance)."""

    def __init__(self, period: float = 60.0) -> None:
        self.period = period
        self._last = float("-inf")
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.period:
                return False
            self._last = now
        logger.log(level, msg, *args)
        return True
