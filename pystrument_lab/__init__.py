"""pystrument_lab: load, explore and explain the performance data Pystrument collects.

Importing the package is cheap: heavy modules (polars, pandas, bokeh,
ipywidgets, litellm) load only when a function that needs them is called.
"""

from __future__ import annotations

__version__ = "0.1.0"
