"""A result as HTML for notebooks and the dashboard: score, bottlenecks, suggestions with code."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = ["render_analysis_html", "render_analysis_text"]

_SEVERITY_COLOURS = {
    "critical": "#b71c1c",
    "high": "#e65100",
    "medium": "#f9a825",
    "low": "#558b2f",
}


def _results(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if "performance_score" in result:
        return result
    return result.get("analysis_results")


def _score_colour(score: float) -> str:
    return "#2e7d32" if score >= 80 else "#f9a825" if score >= 50 else "#c62828"


def _service_label(service: Mapping[str, Any]) -> str:
    """``name model``, without repeating a model named like its service (``rules``)."""
    name = str(service.get("name") or service.get("provider") or "rules")
    model = str(service.get("model") or "")
    return f"{name} {model}" if model and model != name else name


def render_analysis_html(result: Mapping[str, Any]) -> str:
    """An analysis document (or its ``analysis_results``) as a self-contained HTML fragment."""
    results = _results(result)
    service = result.get("ai_service") or {}
    meta = result.get("analysis_metadata") or {}
    summary = (result.get("analysis_input") or {}).get("performance_summary") or {}
    parts = ['<div class="pystrument-analysis" style="font-family:sans-serif;max-width:60em">']
    title = " ".join(str(x) for x in (summary.get("method"), summary.get("route")) if x)
    parts.append(f"<h3>Performance analysis{': ' + escape(title) if title else ''}</h3>")
    if results is None:
        error = (result.get("error") or {}).get(
            "message"
        ) or f"status: {result.get('status', 'unknown')}"
        parts.append(
            f'<p style="color:#c62828"><b>Analysis {escape(str(result.get("status", "")))}</b>: '
            f"{escape(str(error))}</p></div>"
        )
        return "".join(parts)
    score = float(results.get("performance_score", 0))
    parts.append(
        f'<p><span style="font-size:2em;font-weight:bold;color:{_score_colour(score)}">{score:.0f}</span>'
        f" / 100 &nbsp; <small>by {escape(_service_label(service))}"
        f" · confidence {float(meta.get('confidence_score') or 0):.0%}"
        f" · {float(meta.get('duration') or 0):.2f} s · {int(meta.get('tokens_used') or 0)} tokens"
        f" · ${float(meta.get('cost') or 0):.4f}</small></p>"
    )
    if meta.get("fallback_reason"):
        parts.append(f"<p><i>Rule engine used: {escape(str(meta['fallback_reason']))}</i></p>")
    bottlenecks = results.get("bottleneck_analysis") or []
    parts.append("<h4>Bottlenecks</h4>")
    if not bottlenecks:
        parts.append("<p>None found.</p>")
    else:
        parts.append(
            "<table><tr><th>severity</th><th>type</th><th>function</th><th>impact</th>"
            "<th>description</th></tr>"
        )
        for item in bottlenecks:
            severity = str(item.get("severity", ""))
            location = item.get("location")
            function = escape(str(item.get("function", "")))
            if location:
                function += f"<br><small><code>{escape(str(location))}</code></small>"
            parts.append(
                f'<tr><td style="color:{_SEVERITY_COLOURS.get(severity, "#000")}"><b>{escape(severity)}</b></td>'
                f"<td>{escape(str(item.get('type', '')))}</td><td><code>{function}</code></td>"
                f"<td>{float(item.get('impact') or 0):.0%}</td>"
                f"<td>{escape(str(item.get('description', '')))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h4>Suggestions</h4>")
    for item in results.get("optimization_suggestions") or []:
        parts.append(
            f"<details open><summary><b>[{escape(str(item.get('priority', '')))}] "
            f"{escape(str(item.get('title', '')))}</b> <small>({escape(str(item.get('category', '')))})</small>"
            f"</summary><p>{escape(str(item.get('description', '')))}</p>"
        )
        if item.get("code_example"):
            parts.append(
                f'<pre style="background:#f5f5f5;padding:0.5em"><code>'
                f"{escape(str(item['code_example']))}</code></pre>"
            )
        if item.get("expected_improvement"):
            parts.append(f"<p><i>Expected: {escape(str(item['expected_improvement']))}</i></p>")
        parts.append("</details>")
    risks = results.get("risk_assessment") or {}
    for key, label in (
        ("current_risks", "Current risks"),
        ("potential_issues", "Potential issues"),
        ("recommendations", "Recommendations"),
    ):
        if risks.get(key):
            items = "".join(f"<li>{escape(str(x))}</li>" for x in risks[key])
            parts.append(f"<h4>{label}</h4><ul>{items}</ul>")
    if meta.get("answer"):
        # The model's prompt and answer, so a user can see why it said what it said.
        prompt = "\n\n".join(
            f"[{m.get('role')}]\n{m.get('content')}" for m in meta.get("prompt") or []
        )
        parts.append(
            "<details><summary>What the model was asked and answered</summary>"
            f'<pre style="white-space:pre-wrap">{escape(prompt)}</pre>'
            f'<pre style="white-space:pre-wrap">{escape(str(meta["answer"]))}</pre></details>'
        )
    parts.append("</div>")
    return "".join(parts)


def render_analysis_text(result: Mapping[str, Any]) -> str:
    """A short plain-text summary (the ``text/plain`` view of a result)."""
    results = _results(result)
    if results is None:
        error = (result.get("error") or {}).get("message") or result.get("status")
        return f"analysis {result.get('status', '')}: {error}"
    lines = [f"performance score {results.get('performance_score')}/100"]
    for item in results.get("bottleneck_analysis") or []:
        where = f" ({item['location']})" if item.get("location") else ""
        lines.append(
            f"- [{item.get('severity')}] {item.get('type')}: {item.get('function')}{where}"
            f" {float(item.get('impact') or 0):.0%}"
        )
    for item in results.get("optimization_suggestions") or []:
        lines.append(f"* [{item.get('priority')}] {item.get('title')}")
    return "\n".join(lines)
