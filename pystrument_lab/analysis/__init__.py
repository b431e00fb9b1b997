"""Bottleneck analysis: a rule engine, an LLM analyser, analysis jobs and workers.

``analyze(target)`` runs an analysis now, in this process; the collector's
analysis API and ``pystrument worker`` run the same code as queued jobs
(:mod:`pystrument_lab.analysis.jobs`). Importing this package is cheap:
litellm loads only when an LLM service is actually called.

Modules: ``profile`` (the pre-processed input), ``rules`` and ``suggestions``
(the rule engine), ``config`` (AI services), ``llm`` (litellm), ``runner``
(one analysis, service choice, fallback), ``jobs`` and ``worker`` (the
queue), ``report`` (HTML), ``commands`` (the CLI).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pystrument_lab.analysis.report import render_analysis_html, render_analysis_text

if TYPE_CHECKING:
    from pystrument_lab.store import Store

__all__ = ["AnalysisReport", "add_commands", "analyze", "render_analysis_html"]


class AnalysisReport(dict[str, Any]):
    """An analysis document that renders itself in notebooks (HTML) and shells (text)."""

    def _repr_html_(self) -> str:
        return render_analysis_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(render_analysis_text(self))

    @property
    def results(self) -> dict[str, Any] | None:
        return self.get("analysis_results")


def analyze(
    target: Mapping[str, Any] | str | tuple[str, str],
    *,
    service: str | None = None,
    model: str | None = None,
    store: Store | None = None,
    fallback: bool | None = None,
    save: bool = True,
) -> AnalysisReport:
    """Analyse a record, a stored record's key (or a trace id only it has), or an
    endpoint ``(project, route)``.

    ``project`` is a project key or name. ``service`` names an AI service of
    the configuration (``"rules"`` for the rule engine; default: the
    configured default, which is the rule engine when no LLM is configured);
    ``model`` overrides the service's model. Results of stored targets are
    saved in the store as manual analyses (``save=False`` to skip). A failing
    AI service gives a result with ``status == "failed"`` and ``error``.
    """
    from pystrument_lab.analysis import profile as profiles
    from pystrument_lab.analysis import runner
    from pystrument_lab.errors import ParameterError, ProjectNotFound

    project_key = ""
    trace_id: str | None = None
    key: str | None = None
    route: str | None = None
    if isinstance(target, Mapping):
        nodes = target.get("function_calls")
        trace_id = target.get("trace_id")
        key = target.get("record_key") or trace_id
        project_key = str(target.get("project_key") or "")
        if nodes is None and key and project_key:
            store = store or _connect()
            tree = store.get_call_tree(project_key, str(key))
            nodes = (tree or {}).get("nodes") or []
        profile = profiles.from_record(target, nodes or [])
        save = save and store is not None and bool(project_key)
    elif isinstance(target, str):
        store = store or _connect()
        record = store.resolve_record(target)
        trace_id, key = record["trace_id"], record["record_key"]
        profile = runner.record_profile(store, key, record["project_key"])
        project_key = profile.project_key
    elif isinstance(target, tuple) and len(target) == 2:
        store = store or _connect()
        project, route = target
        found = store.find_project(project) or store.project_by_name(project)
        if found is None:
            raise ProjectNotFound(f"no project with key or name {project!r}")
        project_key = found["project_key"]
        profile = runner.endpoint_profile(store, project_key, route)
    else:
        raise ParameterError(
            "analyze() takes a record dict, a trace id or a (project, route) tuple"
        )
    outcome = runner.run_analysis(
        profile,
        service=service,
        model=model,
        fallback=fallback,
        memory_threshold_mb=runner.memory_threshold(store, project_key),
    )
    report = AnalysisReport(
        project_key=project_key,
        trace_id=trace_id,
        record_key=key,
        route=route or profile.route,
        analysis_type="manual",
        **outcome,
    )
    if save and store is not None:
        from pystrument_lab.store import utcnow

        document = {**report, "service": service, "model": model, "created_at": utcnow()}
        document["completed_at"] = document["created_at"]
        report["id"] = store.insert_analysis(document)
    return report


def _connect() -> Store:
    from pystrument_lab.store import connect

    return connect()


def add_commands(commands: Any) -> None:
    """Register ``worker`` and ``analyze`` on the CLI's sub-parsers."""
    from pystrument_lab.analysis.commands import add_commands as add

    add(commands)
