"""Notebook and dashboard views of call trees.

``flame_graph`` (bokeh) and ``CallTreeWidget`` (ipywidgets) load their
library on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pystrument_lab.widgets.bokehjs import bokeh_resources
    from pystrument_lab.widgets.flamegraph import flame_graph, flame_graph_data
    from pystrument_lab.widgets.tree import CallTreeWidget, TreeViewState

__all__ = ["CallTreeWidget", "TreeViewState", "bokeh_resources", "flame_graph", "flame_graph_data"]

_HOMES = {
    "bokeh_resources": "pystrument_lab.widgets.bokehjs",
    "flame_graph": "pystrument_lab.widgets.flamegraph",
    "flame_graph_data": "pystrument_lab.widgets.flamegraph",
    "CallTreeWidget": "pystrument_lab.widgets.tree",
    "TreeViewState": "pystrument_lab.widgets.tree",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
