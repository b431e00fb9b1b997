"""pystrument_lab: load, explore and explain the performance data Pystrument collects.

Importing the package is cheap: heavy modules (polars, pandas, bokeh,
ipywidgets, litellm) load only when a function that needs them is called.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pystrument_lab.loaders import Lab

__all__ = ["Lab", "connect"]


def connect(url: str | None = None, *, database: str | None = None) -> Lab:
    """Open the workbench on the configured store (embedded when no URL is set).

    >>> lab = pystrument_lab.connect()
    >>> lab.endpoints("demo-shop", time_range="24h")
    """
    from pystrument_lab.loaders import connect as _connect

    return _connect(url, database=database)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext pystrument_lab``: register ``%pystrument`` (see :mod:`pystrument_lab.magics`)."""
    from pystrument_lab.magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from pystrument_lab.loaders import Lab

        return Lab
    if name in ("analyze", "render_analysis_html"):  # lazy: keeps the import cheap
        from pystrument_lab import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'pystrument_lab' has no attribute {name!r}")
