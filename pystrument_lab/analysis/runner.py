"""Run one analysis: load its input from the store, pick the service, build the result.

:func:`run_analysis` is the workflow of SPEC §6 — pre-processed input (a
:class:`Profile`), the rule engine always, then the LLM when a service other
than ``"rules"`` is chosen — and returns the parts of an
``ai_analysis_results`` document. It never raises for a failing AI service:
the result has ``status: failed`` and a readable ``error``, or, with
``fallback``, the rule engine's result and the reason it was used.
"""

from __future__ import annotations

import time
from typing import Any

from pystrument_lab.analysis import profile as profiles
from pystrument_lab.analysis.config import RULES, AIConfig, load_config
from pystrument_lab.analysis.profile import Profile
from pystrument_lab.analysis.rules import analyze_profile, rules_confidence
from pystrument_lab.errors import (
    AIServiceUnavailable,
    ErrorCode,
    InvalidPerformanceData,
    ParameterError,
)
from pystrument_lab.store import Store

__all__ = ["ENDPOINT_RECORD_LIMIT", "endpoint_profile", "record_profile", "run_analysis"]

#: How many of an endpoint's newest records an endpoint analysis merges.
ENDPOINT_RECORD_LIMIT = 200
RULES_VERSION = "1"


def record_profile(store: Store, ref: str, project_key: str | None = None) -> Profile:
    """The profile of one stored record: ``ref`` is its record key, or a trace id
    that only one record has (``Store.resolve_record``)."""
    try:
        record = store.resolve_record(ref, project_key)
    except ParameterError as exc:  # 404, or 409 for a trace with several records
        raise InvalidPerformanceData(exc.message, status=exc.status, data=exc.data) from exc
    tree = store.get_call_tree(record["project_key"], record["record_key"])
    return profiles.from_record(record, (tree or {}).get("nodes") or [])


def endpoint_profile(
    store: Store,
    project_key: str,
    route: str,
    *,
    method: str | None = None,
    app_version: str | None = None,
    limit: int = ENDPOINT_RECORD_LIMIT,
) -> Profile:
    records, _ = store.find_records(
        project_key,
        route=route,
        method=method,
        app_version=app_version,
        limit=limit,
        with_total=False,
    )
    if not records:
        raise InvalidPerformanceData(f"no records for route {route!r} in this project", status=404)
    nodes = store.call_tree_nodes(project_key, [r["record_key"] for r in records])
    trees = [nodes[r["record_key"]] for r in records if nodes.get(r["record_key"])]
    return profiles.from_records(records, trees)


def memory_threshold(store: Store | None, project_key: str) -> float | None:
    if store is None or not project_key:
        return None
    project = store.find_project(project_key)
    threshold = ((project or {}).get("config") or {}).get("alert_threshold") or {}
    value = threshold.get("memory_usage")
    return float(value) if value else None


def run_analysis(
    profile: Profile,
    *,
    service: str | None = None,
    model: str | None = None,
    config: AIConfig | None = None,
    fallback: bool | None = None,
    memory_threshold_mb: float | None = None,
    template: str = "performance_analysis",
) -> dict[str, Any]:
    """The analysis parts of an ``ai_analysis_results`` document (see the module docstring)."""
    config = config or load_config()
    fallback = config.fallback_to_rules if fallback is None else fallback
    started = time.monotonic()
    rules_result = analyze_profile(profile, memory_threshold_mb=memory_threshold_mb)
    analysis_input = {
        "performance_summary": profile.summary(),
        "slow_functions": profile.slow_functions(),
        "context_info": {**profile.context_info(), "hot_paths": profile.hot_paths()},
    }
    rules_doc = {
        "status": "completed",
        "ai_service": {
            "provider": RULES,
            "model": "rules",
            "version": RULES_VERSION,
            "name": RULES,
        },
        "analysis_input": analysis_input,
        "analysis_results": rules_result,
        "analysis_metadata": {
            "duration": round(time.monotonic() - started, 4),
            "confidence_score": rules_confidence(profile),
            "tokens_used": 0,
            "cost": 0.0,
        },
        "error": None,
    }
    try:
        name, chosen = config.service(service)
    except AIServiceUnavailable as exc:
        return _failed_or_fallback(rules_doc, service or "", None, str(exc), fallback)
    if chosen is None:
        return rules_doc
    from pystrument_lab.analysis.llm import AnalysisFailed, run_llm

    ai_service = {
        "provider": chosen.provider,
        "model": model or chosen.model,
        "version": chosen.version,
        "name": name,
        "endpoint": chosen.endpoint,
    }
    try:
        results, metadata = run_llm(
            profile, rules_result, name, chosen, config, model=model, template=template
        )
    except AnalysisFailed as exc:
        return _failed_or_fallback(rules_doc, name, ai_service, exc.message, fallback, exc)
    results["rule_findings"] = rules_result["bottleneck_analysis"]
    return {
        **rules_doc,
        "ai_service": ai_service,
        "analysis_results": results,
        "analysis_metadata": metadata,
    }


def _failed_or_fallback(
    rules_doc: dict[str, Any],
    name: str,
    ai_service: dict[str, Any] | None,
    reason: str,
    fallback: bool,
    exc: Any = None,
) -> dict[str, Any]:
    if fallback:
        metadata = {
            **rules_doc["analysis_metadata"],
            "fallback_reason": reason,
            "requested_service": name,
        }
        return {**rules_doc, "analysis_metadata": metadata}
    return {
        **rules_doc,
        "status": "failed",
        "ai_service": ai_service
        or {"provider": "unknown", "model": "", "version": "", "name": name},
        "analysis_results": None,
        "analysis_metadata": {
            "duration": round(getattr(exc, "duration", 0.0), 4),
            "confidence_score": 0.0,
            "tokens_used": getattr(exc, "tokens_used", 0),
            "cost": 0.0,
        },
        "error": {"code": int(ErrorCode.AI_SERVICE_UNAVAILABLE), "message": reason},
    }
