"""The magics' error: a message for the notebook, not a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.error import UsageError

__all__ = ["PystrumentUsageError", "store_problem", "unreachable", "usage_errors"]


class PystrumentUsageError(UsageError):
    """A ``%pystrument`` command could not run; the message says why and what to do.

    IPython prints only the message of a plain ``UsageError``; for subclasses
    it asks ``_render_traceback_`` (and ipykernel sends that as the error's
    traceback), so the notebook shows one line, not a stack.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"UsageError: {self}"]


#: What to do when the store does not answer.
START_STORE = (
    "Start it with `pystrument up` in a terminal (the store, the collector and the dashboard), "
    "or set PYSTRUMENT_MONGODB_URL to a running MongoDB; then run `%pystrument connect [URL]`."
)


def store_problem(detail: str) -> str:
    """The driver's reason in a few words: its errno text, a timeout, or its first clause."""
    found = re.search(r"\[Errno -?\d+\] ([^(,\]]+)", detail)
    if found:
        return found.group(1).strip().lower()
    if "timed out" in detail.lower() or "timeout" in detail.lower():
        return "no answer within the store timeout (PYSTRUMENT_STORE_TIMEOUT_MS)"
    return detail.split(", Timeout:")[0].split("Topology Description")[0].strip(" ,:")[:200]


def unreachable(store_url: str | None, detail: str) -> PystrumentUsageError:
    """The error a notebook shows when the store does not answer: where, why, what to do."""
    if store_url is None:
        from pystrument_lab.settings import get_settings

        store_url = get_settings().mongodb_url
    where = f" at {store_url}" if store_url else ""
    return PystrumentUsageError(
        f"cannot reach the store{where} ({store_problem(detail)}). {START_STORE}"
    )


@contextmanager
def usage_errors(store_url: str | None = None) -> Iterator[None]:
    """Turn the library's errors (and an unreachable store) into :class:`PystrumentUsageError`.

    A driver error (the store did not answer) becomes one sentence naming the
    store's URL and how to start it, not the driver's topology description.
    """
    from pystrument_lab.errors import PystrumentError, StoreUnavailable
    from pystrument_lab.store import StoreError

    try:
        yield
    except PystrumentUsageError:
        raise
    except StoreUnavailable as exc:
        if isinstance(exc.__cause__, StoreError):  # the driver's, e.g. creating the indexes
            raise unreachable(store_url, str(exc.__cause__)) from None
        raise PystrumentUsageError(exc.message) from None  # the embedded store's own words
    except PystrumentError as exc:
        raise PystrumentUsageError(exc.message) from None
    except StoreError as exc:
        raise unreachable(store_url, str(exc)) from None
