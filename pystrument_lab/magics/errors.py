"""The magics' error: a message for the notebook, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.error import UsageError

__all__ = ["PystrumentUsageError", "usage_errors"]


class PystrumentUsageError(UsageError):
    """A ``%pystrument`` command could not run; the message says why and what to do.

    IPython prints only the message of a plain ``UsageError``; for subclasses
    it asks ``_render_traceback_`` (and ipykernel sends that as the error's
    traceback), so the notebook shows one line, not a stack.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"UsageError: {self}"]


@contextmanager
def usage_errors(store_url: str | None = None) -> Iterator[None]:
    """Turn the library's errors (and an unreachable store) into :class:`PystrumentUsageError`."""
    from pystrument_lab.errors import PystrumentError
    from pystrument_lab.store import StoreError

    try:
        yield
    except PystrumentUsageError:
        raise
    except PystrumentError as exc:
        raise PystrumentUsageError(exc.message) from None
    except StoreError as exc:
        where = f" at {store_url}" if store_url else ""
        raise PystrumentUsageError(
            f"cannot reach the store{where}: {exc}. Check PYSTRUMENT_MONGODB_URL or run "
            "`%pystrument connect URL`."
        ) from None
