"""Where notebook figures get BokehJS: inside the notebook by default, so they draw offline.

A figure whose BokehJS comes from a CDN stays blank in a browser without
internet access (an air-gapped network, a laptop on a train), with no error
in the notebook. So the magics' figures and the guide notebooks'
``output_notebook(bokeh_resources())`` put BokehJS into the notebook itself
(about 1 MB per notebook, or per magic figure); ``PYSTRUMENT_BOKEH_RESOURCES=cdn``
loads it from the CDN instead, for smaller saved notebooks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bokeh_resources"]


def bokeh_resources() -> Any:
    """``bokeh.resources.INLINE``, or ``CDN`` when ``PYSTRUMENT_BOKEH_RESOURCES=cdn``."""
    from bokeh.resources import CDN, INLINE

    from pystrument_lab.settings import get_settings

    return CDN if get_settings().bokeh_resources == "cdn" else INLINE
