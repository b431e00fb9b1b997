"""Small HTML building blocks for report notebooks: KPI tiles and formatted tables.

Reports are read as exported HTML with the code hidden, so each section
displays one self-contained HTML output. Values are formatted here and never
computed: the numbers come from the loaders.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pystrument_lab.widgets.timefmt import format_seconds

Formatter = Callable[[Any], str]
Column = tuple[str, str, Formatter]

_TABLE_STYLE = (
    "border-collapse:collapse;font-size:13px;margin:4px 0 12px 0;"
    "font-family:system-ui,-apple-system,Segoe UI,sans-serif"
)
_CELL = "padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:{align}"


class HTMLBlock(str):
    """A string that notebooks display as HTML (and shells as its text)."""

    def _repr_html_(self) -> str:
        return str(self)


def seconds(value: Any) -> str:
    return "–" if value is None else format_seconds(float(value))


def percent(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f}%"


def change(value: Any) -> str:
    """A relative change: ``+35%``, ``-4%``."""
    return "–" if value is None else f"{float(value) * 100:+.0f}%"


def count(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def text(value: Any) -> str:
    return "" if value is None else str(value)


def kpi_tiles(items: Iterable[tuple[str, str]]) -> HTMLBlock:
    """A row of labelled figures: ``[("Requests", "12,345"), ("p95", "230 ms")]``."""
    tiles = "".join(
        '<div style="border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px">'
        f'<div style="font-size:12px;color:#666">{html.escape(label)}</div>'
        f'<div class="kpi-value" style="font-size:20px;font-weight:600">{html.escape(value)}</div>'
        "</div>"
        for label, value in items
    )
    return HTMLBlock(f'<div style="display:flex;flex-wrap:wrap;gap:10px">{tiles}</div>')


def table(rows: Any, columns: Sequence[Column], *, empty: str = "Nothing to show.") -> HTMLBlock:
    """An HTML table of ``rows`` (a polars/pandas frame or a list of dicts).

    ``columns`` are ``(heading, field, formatter)``; numbers align right.
    """
    records = _records(rows)
    if not records:
        return HTMLBlock(f"<p><em>{html.escape(empty)}</em></p>")
    numeric = {field for _, field, fmt in columns if fmt is not text}
    head = "".join(
        f'<th style="{_CELL.format(align="right" if field in numeric else "left")}">'
        f"{html.escape(heading)}</th>"
        for heading, field, _ in columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_CELL.format(align="right" if field in numeric else "left")}">'
            f"{html.escape(fmt(record.get(field)))}</td>"
            for _, field, fmt in columns
        )
        + "</tr>"
        for record in records
    )
    return HTMLBlock(
        f'<table style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _records(rows: Any) -> list[dict[str, Any]]:
    if isinstance(rows, list):
        return rows
    if hasattr(rows, "iter_rows"):  # polars
        return list(rows.iter_rows(named=True))
    if hasattr(rows, "to_dict"):  # pandas
        return list(rows.to_dict("records"))
    return list(rows)
