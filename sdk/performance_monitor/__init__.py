"""Pystrument SDK: measures every request and profiles a sample with pyinstrument.

Integrations: :mod:`performance_monitor.flask`, :mod:`performance_monitor.django`,
:mod:`performance_monitor.fastapi`; SQLAlchemy query metrics with
:func:`performance_monitor.sqlalchemy.instrument_engine`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def stats() -> dict[str, Any]:
    """Counters of this process: sent, dropped, retried, failed, queued, skipped profiles..."""
    from .core import profiler
    from .core.monitor import all_monitors
    from .utils.logger import internal_error_count

    totals: dict[str, Any] = {}
    for monitor in all_monitors():
        if monitor.sender is not None:
            for name, value in monitor.sender.stats().items():
                totals[name] = totals.get(name, 0) + value
    totals["skipped_profiles"] = profiler.skipped_profiles
    totals["internal_errors"] = internal_error_count()
    return totals


def flush(timeout: float = 5.0) -> bool:
    """Send everything queued by every monitor in this process; True if all were done in time.

    Every monitor is flushed (each within ``timeout``), even when an earlier one failed.
    """
    from .core.monitor import all_monitors
    from .utils.logger import capture_internal_exceptions

    done = True
    for monitor in all_monitors():
        flushed = False
        with capture_internal_exceptions():
            flushed = monitor.flush(timeout)
        done = done and flushed
    return done
