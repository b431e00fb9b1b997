"""Show text that came from a monitored app as text, in HTML and in Markdown.

Paths, routes, headers, function names, SQL and exception messages are
written by whoever sent the request: every place that renders one into
markup goes through these functions, not through a sanitizer downstream.
"""

from __future__ import annotations

import html
from typing import Any

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
#: The punctuation that means something to CommonMark, GFM tables and
#: strikethrough, or the attribute and math extensions; each may be
#: backslash-escaped. Slashes, dots and colons stay, so paths read as written.
_MARKDOWN = {char: "\\" + char for char in "\\`*_[]()!|~#+-=${}^"}
_TABLE = str.maketrans({**_MARKDOWN, **_HTML, "\n": " ", "\r": " ", "\t": " "})


def html_text(value: Any) -> str:
    """``value`` as HTML text (also safe inside a quoted attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


def markdown_text(value: Any) -> str:
    """``value`` as literal text inside Markdown: no markup, no HTML, no line structure.

    HTML metacharacters become entities and Markdown's punctuation is
    backslash-escaped, so neither a Markdown renderer nor the HTML it emits
    gives the text any meaning; line breaks become spaces so a value cannot
    start a heading, list or table row.
    """
    return ("" if value is None else str(value)).translate(_TABLE)


def markdown_code(value: Any) -> str:
    """``value`` shown as inline code in Markdown, whatever backticks or markup it holds."""
    return f"<code>{markdown_text(value)}</code>"
