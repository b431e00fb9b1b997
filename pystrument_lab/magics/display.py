"""Notebook outputs: one object, ``text/html`` for the notebook and ``text/plain`` for the rest.

Bokeh figures are embedded in an ``<iframe srcdoc>`` page that carries its
own BokehJS, so a figure shows in JupyterLab, classic Notebook, VS Code and
an nbconvert HTML export alike without ``output_notebook()`` having been run
first, several figures in one notebook never share (or fight over) one
BokehJS, and nothing is fetched from the internet
(:func:`pystrument_lab.widgets.bokeh_resources`: about 1 MB per figure in the
saved notebook; ``PYSTRUMENT_BOKEH_RESOURCES=cdn`` loads BokehJS from its
CDN instead).
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["FigureView"]


class FigureView:
    """A bokeh figure shown by value; ``summary`` is its ``text/plain`` form."""

    def __init__(self, figure: Any, summary: str, *, height: int | None = None) -> None:
        self.figure = figure
        self.summary = summary
        self.height = height or int(getattr(figure, "height", None) or 400) + 40

    def html(self) -> str:
        from bokeh.embed import file_html

        from pystrument_lab.widgets.bokehjs import bokeh_resources

        page = file_html(
            self.figure, resources=bokeh_resources(), title=self.summary.splitlines()[0]
        )
        return (
            f'<iframe srcdoc="{html.escape(page, quote=True)}" '
            f'style="width: 100%; height: {self.height}px; border: none;" '
            f'title="{html.escape(self.summary.splitlines()[0], quote=True)}"></iframe>'
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.html(), "text/plain": self.summary}

    def __repr__(self) -> str:
        return self.summary
