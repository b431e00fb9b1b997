"""The SDK's logger and the guard that keeps SDK failures away from the host app.

Every piece of SDK work on the request path runs inside
:func:`capture_internal_exceptions`: an
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
from types import TracebackType

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


class _InternalExceptions:
    """``with capture_internal_exceptions():`` around SDK work: its exceptions are logged, swallowed.

    One shared object with ``__enter__``/``__exit__`` (no generator per use, as
    sentry-python does), so it is cheap enough for the request path. Only
    :class:`Exception` is swallowed: ``KeyboardInterrupt``/``SystemExit`` pass.
    The log record's traceback says which step failed.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if kind is None or not issubclass(kind, Exception):
            return False
        global _internal_error_count
        _internal_error_count += 1
        if raise_internal_errors:
            return False
        logger.error("performance_monitor: internal error (ignored)", exc_info=value)
        return True


_INTERNAL_EXCEPTIONS = _InternalExceptions()


def internal_error(error: Exception) -> None:
    """What the guard does with ``error``, for ``except Exception`` on the request path.

    ``try: ... except Exception as error: internal_error(error)`` costs
    nothing until something fails, where ``with capture_internal_exceptions()``
    makes three calls each time; the hot path of an unsampled request uses it.
    Re-raises in test mode, as the guard does.
    """
    global _internal_error_count
    _internal_error_count += 1
    if raise_internal_errors:
        raise error
    logger.error("performance_monitor: internal error (ignored)", exc_info=error)


def capture_internal_exceptions() -> _InternalExceptions:
    """The guard around every piece of SDK work (see :class:`_InternalExceptions`)."""
    return _INTERNAL_EXCEPTIONS


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
