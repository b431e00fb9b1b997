"""The trace page's diagnostics panels: the exception, the SQL statements, the allocation sites.

Each function turns one part of a stored record (``docs/data-model.md``:
``error``, ``performance_metrics.database_metrics.statements``,
``performance_metrics.memory_usage.allocations``) into an HTML fragment, or
``None`` when the record has no such part. Every value came from the
monitored app, so each one goes through :func:`html_text`; the fragments are
plain strings, testable by value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from pystrument_lab.markup import html_text
from pystrument_lab.widgets.timefmt import format_ms

__all__ = [
    "PANEL_STYLE",
    "allocations_html",
    "exception_html",
    "format_bytes",
    "same_exception_html",
    "sql_html",
]

#: Shared by the three panels (scoped to their classes).
PANEL_STYLE = """
<style>
.diag { font-size: 13px; width: 100%; }
.diag h4 { margin: 0.4em 0; }
.diag table { border-collapse: collapse; width: 100%; }
.diag th, .diag td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee;
  vertical-align: top; }
.diag td.num, .diag th.num { text-align: right; white-space: nowrap; }
.diag code, .diag pre { font-family: ui-monospace, Menlo, Consolas, monospace; }
.diag pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.exception-head { background: #fdecea; border-left: 4px solid #d62828; padding: 6px 10px; }
.exception-type { font-weight: bold; color: #9b1c1c; }
.traceback { list-style: none; padding: 0; margin: 6px 0; }
.traceback li { padding: 2px 8px; color: #6c757d; border-left: 4px solid transparent; }
.traceback li.application { color: #1d3557; background: #fff7e6; border-left-color: #f4a261;
  font-weight: 600; }
.traceback .where { font-weight: normal; color: #6c757d; margin-left: 0.8em; }
.sql tr.repeated td { background: #fff3cd; }
.badge-repeated { display: inline-block; background: #e76f51; color: white; border-radius: 3px;
  padding: 0 5px; font-size: 11px; font-weight: 600; white-space: nowrap; }
.diag .note { color: #6c757d; margin: 4px 0; }
</style>
"""


def format_bytes(size: float) -> str:
    """``512 B``, ``12.3 KiB``, ``4.56 MiB``: three significant digits."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _site(site: Mapping[str, Any] | None) -> str:
    """``function`` and ``file:line`` of a call site, as HTML."""
    if not site:
        return "–"
    function = html_text(site.get("function") or "?")
    where = html_text(f"{site.get('file') or '?'}:{site.get('line') or '?'}")
    return f"<code>{function}</code> <span class='where'>{where}</span>"


def exception_html(error: Mapping[str, Any] | None) -> str | None:
    """The exception a request raised: type, message, the traceback (application frames marked)."""
    if not error:
        return None
    frames: Sequence[Mapping[str, Any]] = error.get("traceback") or []
    items = []
    for frame in frames:
        application = bool(frame.get("is_application"))
        items.append(
            f"<li class='{'application' if application else 'library'}'>"
            f"<code>{html_text(frame.get('function') or '?')}</code>"
            f"<span class='where'>{html_text(frame.get('file') or '?')}:"
            f"{html_text(frame.get('line') or '?')}</span></li>"
        )
    omitted = int(error.get("frames_omitted") or 0)
    notes = []
    if omitted:
        notes.append(f"{omitted} outer frame{'s' if omitted != 1 else ''} not sent")
    if frames:
        mine = sum(1 for frame in frames if frame.get("is_application"))
        notes.append(f"{mine} of {len(frames)} frames are application code (highlighted)")
    return (
        "<div class='diag exception'><h4>Exception</h4>"
        f"<div class='exception-head'><span class='exception-type'>{html_text(error.get('type'))}</span>: "
        f"<span class='exception-message'>{html_text(error.get('message'))}</span></div>"
        f"<p class='note'>Traceback, outermost call first. {' · '.join(notes)}</p>"
        f"<ol class='traceback'>{''.join(items)}</ol></div>"
    )


def trace_href(project: str, trace_id: str) -> str:
    """The dashboard address of a trace page (a query string, escaped for an attribute)."""
    return html_text("?" + urlencode({"page": "trace", "project": project, "trace": trace_id}))


def same_exception_html(
    error_type: str, others: Sequence[Mapping[str, Any]], total: int, project: str
) -> str:
    """The project's other sampled requests that raised ``error_type``, newest first, linked.

    ``total`` counts them (bounded by the store: at its bound the page says "or more").
    """
    kind = f"<code>{html_text(error_type)}</code>"
    if not others:
        return (
            "<div class='diag same-exception'><h4>Other requests with this exception</h4>"
            f"<p class='note'>No other sampled request of this project raised {kind}.</p></div>"
        )
    from pystrument_lab.store.exceptions import COUNT_LIMIT

    counted = f"{total} or more" if total >= COUNT_LIMIT else str(total)
    rows = []
    for doc in others:
        when = doc.get("timestamp")
        rows.append(
            f"<tr><td class='num'>{html_text(f'{when:%Y-%m-%d %H:%M:%S}' if when else '–')}</td>"
            f"<td><code>{html_text(doc.get('method'))} {html_text(doc.get('path'))}</code></td>"
            f"<td class='num'>{html_text(doc.get('status_code'))}</td>"
            f"<td class='num'>{format_ms(float(doc.get('total_duration') or 0.0))}</td>"
            f"<td class='message'>{html_text((doc.get('error') or {}).get('message'))}</td>"
            f"<td><a class='trace-link' href='{trace_href(project, str(doc['trace_id']))}'>"
            f"{html_text(str(doc['trace_id'])[:12])}…</a></td></tr>"
        )
    return (
        "<div class='diag same-exception'><h4>Other requests with this exception</h4>"
        f"<p class='note'>{counted} other sampled request{'s' if total != 1 else ''} raised "
        f"{kind}; the newest {len(others)}:</p>"
        "<table><thead><tr><th class='num'>time (UTC)</th><th>request</th>"
        "<th class='num'>status</th><th class='num'>duration</th><th>message</th><th>trace</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def sql_html(database: Mapping[str, Any] | None) -> str | None:
    """The request's distinct SQL statements: count, total and slowest time, call site.

    A statement run more than once in the request is flagged: a loop issuing
    one query per item (the N+1 pattern) shows as one statement with a count.
    """
    statements = (database or {}).get("statements") or {}
    items: Sequence[Mapping[str, Any]] = statements.get("items") or []
    if not items:
        return None
    rows = []
    for item in items:
        count = int(item.get("count") or 0)
        repeated = count > 1
        badge = f" <span class='badge-repeated'>repeated ×{count}</span>" if repeated else ""
        rows.append(
            f"<tr class='{'repeated' if repeated else 'single'}'>"
            f"<td><pre class='statement'>{html_text(item.get('statement'))}</pre></td>"
            f"<td class='num count'>{count}{badge}</td>"
            f"<td class='num'>{format_ms(float(item.get('total_duration') or 0.0))}</td>"
            f"<td class='num'>{format_ms(float(item.get('max_duration') or 0.0))}</td>"
            f"<td class='site'>{_site(item.get('call_site'))}</td></tr>"
        )
    executions = sum(int(item.get("count") or 0) for item in items)
    total = sum(float(item.get("total_duration") or 0.0) for item in items)
    repeated_count = sum(1 for item in items if int(item.get("count") or 0) > 1)
    summary = (
        f"{len(items)} distinct statement{'s' if len(items) != 1 else ''}, "
        f"{executions} execution{'s' if executions != 1 else ''}, {format_ms(total)} in total"
        + (f"; {repeated_count} repeated within the request" if repeated_count else "")
    )
    other = int(statements.get("other_statements") or 0)
    footer = (
        f"<p class='note'>Not listed: {other} more statements "
        f"({int(statements.get('other_count') or 0)} executions, "
        f"{format_ms(float(statements.get('other_duration') or 0.0))}).</p>"
        if other
        else ""
    )
    return (
        "<div class='diag sql'><h4>SQL statements</h4>"
        f"<p class='note'>{summary}. Literals are shown as <code>?</code>.</p>"
        "<table><thead><tr><th>statement</th><th class='num'>count</th>"
        "<th class='num'>total time</th><th class='num'>slowest</th><th>call site</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{footer}</div>"
    )


def allocations_html(memory: Mapping[str, Any] | None) -> str | None:
    """The application lines holding the most memory allocated during the request."""
    allocations: Sequence[Mapping[str, Any]] = (memory or {}).get("allocations") or []
    if not allocations:
        return None
    rows = "".join(
        f"<tr><td class='site'>{_site(item)}</td>"
        f"<td class='num'>{format_bytes(float(item.get('size') or 0))}</td>"
        f"<td class='num'>{int(item.get('count') or 0):,}</td></tr>"
        for item in allocations
    )
    return (
        "<div class='diag allocations'><h4>Allocation sites</h4>"
        "<p class='note'>Application lines holding the most memory allocated during the request "
        "and still held at its end (tracemalloc).</p>"
        "<table><thead><tr><th>line</th><th class='num'>size</th><th class='num'>blocks</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )
