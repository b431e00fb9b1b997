"""The rule engine: a deterministic analyser that works offline, without a key.

Input is a :class:`~pystrument_lab.analysis.profile.Profile` (one record, or
an endpoint's records merged); output is the SPEC §3 ``analysis_results``.
Findings come from what the SDK measured (:mod:`~pystrument_lab.analysis.evidence`:
statements and their call sites, allocation sites, the call tree read against
CPU time), never from what functions are called. All times are means per
request; thresholds are module constants.

- **n_plus_one** (database): one statement run at least
  ``N_PLUS_ONE_MIN_REPEATS`` times per request, named after the application
  function it is called from (a comprehension's call site names its function).
- **slow_sql** (database): one statement taking ``SLOW_STATEMENT_MIN_SHARE``
  of the request and ``SLOW_STATEMENT_MIN_TIME`` seconds.
- **waiting** (io): an application function whose time off the CPU reaches
  ``WAITING_MIN_SHARE`` of the request and ``WAITING_MIN_TIME`` seconds: awaits,
  blocking calls below it, and its own time the request's CPU time says it
  did not spend computing (``with lock:`` has no frame of its own).
- **memory_growth** (memory): a memory delta of ``MEMORY_DELTA_MB`` or a peak
  of ``MEMORY_PEAK_MB`` (or the project's ``alert_threshold.memory_usage``),
  named after the application line tracemalloc saw holding the most (else,
  when no line still holds it, the deepest function with
  ``MEMORY_FUNCTION_MIN_SHARE`` of the busiest one's CPU time); a CPU hot
  spot in that same function is its allocating and filling, folded in.
- **cpu_hotspot** (computation): the application functions whose CPU time
  (their own code and the library code they call, up to the next application
  function; not the database, not waits) reaches ``HOTSPOT_MIN_SHARE`` of the
  request and ``HOTSPOT_MIN_TIME`` seconds.

**Severity follows cost**: the share of the request a finding explains and
its absolute time per request (:func:`severity_for`); an N+1 is at least
``high`` from ``N_PLUS_ONE_HIGH_REPEATS`` repeats (its cost grows with the
data); memory by megabytes per request (twenty such requests in flight hold
twenty times as much). Findings are ranked by severity, then impact.

``performance_score`` (0–100, higher is better), for record and endpoint
analyses alike::

    100 - latency_penalty - findings_penalty
    latency_penalty  = 40 * clamp((mean duration - 0.1 s) / (2.0 s - 0.1 s), 0, 1)
    findings_penalty = min(60, sum(critical 25, high 15, medium 7, low 2 per finding))
"""

from __future__ import annotations

import math
from typing import Any

from pystrument_lab.analysis.evidence import (
    Attribution,
    FunctionTime,
    Statement,
    attribute,
    libraries_in,
    owner_in_tree,
)
from pystrument_lab.analysis.profile import Profile
from pystrument_lab.analysis.suggestions import suggestion_for

__all__ = ["analyze_profile", "find_bottlenecks", "performance_score", "severity_for"]

N_PLUS_ONE_MIN_REPEATS = 10
N_PLUS_ONE_HIGH_REPEATS = 20
SLOW_STATEMENT_MIN_SHARE = 0.2
SLOW_STATEMENT_MIN_TIME = 0.01
WAITING_MIN_SHARE = 0.3
WAITING_MIN_TIME = 0.02
HOTSPOT_MIN_SHARE = 0.15
HOTSPOT_MIN_TIME = 0.02
MEMORY_DELTA_MB = 10.0
MEMORY_PEAK_MB = 20.0
MEMORY_FUNCTION_MIN_SHARE = 0.25
LATENCY_GOOD = 0.1
LATENCY_BAD = 2.0
SEVERITY_PENALTY = {"critical": 25, "high": 15, "medium": 7, "low": 2}
SEVERITY_RANK = {"critical": 3, "high": 2, "medium": 1, "low": 0}
#: severity → (minimum share of the request, minimum seconds per request).
SEVERITY_FLOORS = (("critical", 0.5, 0.1), ("high", 0.25, 0.025), ("medium", 0.1, 0.005))
#: severity → minimum megabytes per request.
MEMORY_FLOORS = (("critical", 200.0), ("high", 50.0), ("medium", 20.0))


def severity_for(impact: float, seconds: float = math.inf) -> str:
    """From a share of the request and its seconds per request (see SEVERITY_FLOORS)."""
    for severity, share, floor in SEVERITY_FLOORS:
        if impact >= share and seconds >= floor:
            return severity
    return "low"


def _memory_severity(megabytes: float) -> str:
    return next((s for s, floor in MEMORY_FLOORS if megabytes >= floor), "low")


def _max_severity(*severities: str) -> str:
    return max(severities, key=lambda s: SEVERITY_RANK[s])


def _n_plus_one_severity(impact: float, seconds: float, repeats: float) -> str:
    """By cost, and at least high from ``N_PLUS_ONE_HIGH_REPEATS`` (it grows with the data)."""
    floor = "high" if repeats >= N_PLUS_ONE_HIGH_REPEATS else "medium"
    return _max_severity(severity_for(impact, seconds), floor)


def performance_score(mean_duration: float, findings: list[dict[str, Any]]) -> int:
    """The documented 0–100 score (see the module docstring)."""
    latency = 40.0 * min(
        max((mean_duration - LATENCY_GOOD) / (LATENCY_BAD - LATENCY_GOOD), 0.0), 1.0
    )
    penalty = min(60, sum(SEVERITY_PENALTY[f["severity"]] for f in findings))
    return max(0, min(100, round(100.0 - latency - penalty)))


def _finding(
    kind: str,
    type_: str,
    where: tuple[str, str, int] | None,
    impact: float,
    seconds: float,
    description: str,
    severity: str | None = None,
    **evidence: Any,
) -> dict[str, Any]:
    impact = max(0.0, min(1.0, impact))
    function, file_path, line = where if where else ("(request)", "", 0)
    return {
        "type": type_,
        "severity": severity or severity_for(impact, seconds),
        "function": function,
        "file_path": file_path,
        "line_number": line,
        "location": f"{file_path}:{line}" if where else "",
        "description": description,
        "impact": round(impact, 4),
        "kind": kind,
        "evidence": evidence,
    }


def _where(entry: FunctionTime) -> tuple[str, str, int]:
    node = entry.node
    return (node.function_name, node.file_path, node.line_number)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- database ----------------------------------------------------------------------


def _statement_owner(
    profile: Profile, attribution: Attribution, statement: Statement
) -> tuple[str, str, int] | None:
    owner = owner_in_tree(profile.tree, statement.function, statement.file, statement.line)
    if owner is not None:
        return (owner.function_name, owner.file_path, owner.line_number)
    if statement.function and not statement.function.startswith("<"):
        return (statement.function, statement.file, statement.line)
    heaviest = attribution.ranked("database")
    return _where(heaviest[0]) if heaviest and heaviest[0].database > 0 else None


def _database_findings(profile: Profile, attribution: Attribution) -> list[dict[str, Any]]:
    wall = profile.total_duration or 0.0
    findings: list[dict[str, Any]] = []
    if not profile.statements:
        return _database_findings_from_counts(profile, attribution)
    for statement in profile.statements:
        where = _statement_owner(profile, attribution, statement)
        owner_db = (
            attribution.functions[where[0]].database
            if where and where[0] in attribution.functions
            else 0.0
        )
        seen = (
            f" in {statement.requests} of {profile.requests} requests"
            if profile.requests > 1
            else ""
        )
        if statement.count >= N_PLUS_ONE_MIN_REPEATS:
            seconds = max(statement.total_duration, owner_db)
            impact = seconds / wall if wall else 0.0
            findings.append(
                _finding(
                    "n_plus_one",
                    "database",
                    where,
                    impact,
                    seconds,
                    f"N+1 queries: {where[0] if where else 'the request'} runs the same statement "
                    f"{statement.count:.0f} times per request{seen} "
                    f"({_ms(statement.total_duration)} in the database, "
                    f"{_ms(seconds)} with the driver and ORM): {statement.text[:200]}",
                    _n_plus_one_severity(impact, seconds, statement.count),
                    statement=statement.text[:500],
                    repeats=statement.count,
                    query_time=statement.total_duration,
                    query_count=profile.query_count,
                )
            )
        elif (
            wall
            and statement.total_duration / wall >= SLOW_STATEMENT_MIN_SHARE
            and statement.total_duration >= SLOW_STATEMENT_MIN_TIME
        ):
            impact = statement.total_duration / wall
            findings.append(
                _finding(
                    "slow_sql",
                    "database",
                    where,
                    impact,
                    statement.total_duration,
                    f"Slow SQL in {where[0] if where else 'the request'}: "
                    f"{_ms(statement.total_duration)} per request ({impact:.0%}, "
                    f"{statement.count:.0f} execution(s){seen}) for {statement.text[:200]}",
                    statement=statement.text[:500],
                    duration=statement.total_duration,
                    max_duration=statement.max_duration,
                )
            )
    return findings


def _database_findings_from_counts(
    profile: Profile, attribution: Attribution
) -> list[dict[str, Any]]:
    """Records without statements (older SDKs): query counts and slow queries only."""
    wall = profile.total_duration or 0.0
    heaviest = attribution.ranked("database")
    where = _where(heaviest[0]) if heaviest and heaviest[0].database > 0 else None
    findings = []
    if (
        profile.query_count >= N_PLUS_ONE_MIN_REPEATS
        and profile.query_time / max(profile.query_count, 1) <= 0.02
    ):
        seconds = profile.query_time
        impact = seconds / wall if wall else 0.0
        findings.append(
            _finding(
                "n_plus_one",
                "database",
                where,
                impact,
                seconds,
                f"N+1 queries: {profile.query_count:.0f} queries per request "
                f"({_ms(profile.query_time)} in total): one query per item.",
                _n_plus_one_severity(impact, seconds, profile.query_count),
                repeats=profile.query_count,
                query_time=profile.query_time,
                query_count=profile.query_count,
            )
        )
    for query in profile.slow_queries[:3]:
        duration = float(query.get("duration") or 0.0)
        statement = " ".join(str(query.get("statement") or "").split())
        findings.append(
            _finding(
                "slow_sql",
                "database",
                where,
                duration / wall if wall else 0.0,
                duration,
                f"Slow SQL: {duration:.3f} s for {statement[:200]}",
                statement=statement[:500],
                duration=duration,
            )
        )
    return findings


# -- waits, memory, CPU --------------------------------------------------------------


def _waiting_findings(
    profile: Profile, attribution: Attribution, taken: set[str]
) -> list[dict[str, Any]]:
    wall = profile.total_duration or 0.0
    cpu_share = profile.cpu_share
    findings = []
    for entry in attribution.ranked("wait"):
        share = entry.wait / wall if wall else 0.0
        name = entry.node.function_name
        if share < WAITING_MIN_SHARE or entry.wait < WAITING_MIN_TIME:
            break
        if name in taken:
            continue
        calls = sorted(entry.waits.items(), key=lambda item: -item[1])
        on = ", ".join(f"{call} {_ms(seconds)}" for call, seconds in calls[:3])
        findings.append(
            _finding(
                "waiting",
                "io",
                _where(entry),
                share,
                entry.wait,
                f"Waiting: {name} ({entry.node.location}) waits {_ms(entry.wait)} per request "
                f"({share:.0%}) off the CPU, in {on}"
                + (
                    f"; the request's CPU time is {cpu_share:.0%} of its wall time."
                    if cpu_share is not None
                    else "."
                ),
                cpu_share=cpu_share,
                wait_share=share,
                waits=dict(calls[:5]),
                wait_calls=dict(sorted(entry.wait_calls.items(), key=lambda item: -item[1])[:5]),
            )
        )
        taken.add(name)
    return findings


def _memory_heavy(profile: Profile, memory_threshold_mb: float | None) -> bool:
    delta, peak = profile.memory_delta or 0.0, profile.peak_memory or 0.0
    peak_limit = min(MEMORY_PEAK_MB, memory_threshold_mb) if memory_threshold_mb else MEMORY_PEAK_MB
    return delta >= MEMORY_DELTA_MB or peak >= peak_limit


def _allocating(attribution: Attribution) -> tuple[str, str, int] | None:
    """Where a request whose memory no line still holds spent its CPU allocating.

    Among the functions with at least ``MEMORY_FUNCTION_MIN_SHARE`` of the
    busiest one's CPU time, the deepest: a caller that hashes or sends what
    its callee built has time of the same order, and the callee is the more
    specific place. Ties go to the busier.
    """
    ranked = attribution.ranked("busy")
    if not ranked or ranked[0].busy <= 0:
        return None
    floor = ranked[0].busy * MEMORY_FUNCTION_MIN_SHARE
    working = [entry for entry in ranked if entry.busy >= floor]
    deepest = max(working, key=lambda entry: (len(entry.node.ancestors()), entry.busy))
    return _where(deepest)


def _memory_finding(
    profile: Profile,
    attribution: Attribution,
    memory_threshold_mb: float | None,
) -> dict[str, Any] | None:
    if not _memory_heavy(profile, memory_threshold_mb):
        return None
    delta, peak = profile.memory_delta or 0.0, profile.peak_memory or 0.0
    size = max(delta, peak)
    wall = profile.total_duration or 0.0
    # A site explains the memory when it holds a tenth of it (a freed buffer leaves none).
    site = next((s for s in profile.allocations[:1] if s.size_mb >= max(1.0, 0.1 * size)), None)
    where: tuple[str, str, int] | None = None
    if site is not None:
        owner = owner_in_tree(profile.tree, site.function, site.file, site.line)
        where = (
            (owner.function_name, owner.file_path, owner.line_number)
            if owner is not None
            else (site.function, site.file, site.line)
        )
        found = (
            f", {site.size_mb:.1f} MB of it still held from {site.file}:{site.line} "
            f"({site.count:.0f} blocks)"
        )
    else:
        # No site holds it (freed before the request ended, or tracked without
        # sites): allocating and filling memory is CPU work, so name the busiest.
        where = _allocating(attribution)
        found = (
            f"; no line still holds it at the end (a freed buffer leaves none): {where[0]} is where the request spends "
            "its CPU time (confirm with tracemalloc)"
            if where
            else ""
        )
    entry = attribution.functions.get(where[0]) if where else None
    seconds = entry.busy if entry else 0.0
    return _finding(
        "memory_growth",
        "memory",
        where,
        seconds / wall if wall else 0.0,
        seconds,
        f"Memory: peak {peak:.1f} MB, delta {delta:+.1f} MB per request{found}.",
        _memory_severity(size),
        peak_memory=peak,
        memory_delta=delta,
        allocation_site=(
            {"file": site.file, "line": site.line, "size_mb": site.size_mb} if site else None
        ),
    )


def _cpu_findings(
    profile: Profile, attribution: Attribution, taken: set[str]
) -> list[dict[str, Any]]:
    wall = profile.total_duration or 0.0
    findings = []
    for entry in [e for e in attribution.ranked("busy") if e.node.function_name not in taken][:2]:
        share = entry.busy / wall if wall else 0.0
        if share < HOTSPOT_MIN_SHARE or entry.busy < HOTSPOT_MIN_TIME:
            break
        calls = sorted(entry.calls.items(), key=lambda item: -item[1])
        own = entry.busy - sum(seconds for _, seconds in calls)
        parts = [f"its own code {_ms(own)}"] + [f"{c} {_ms(s)}" for c, s in calls[:3]]
        findings.append(
            _finding(
                "cpu_hotspot",
                "computation",
                _where(entry),
                share,
                entry.busy,
                f"CPU hot spot: {entry.node.function_name} ({entry.node.location}) computes for "
                f"{_ms(entry.busy)} per request ({share:.0%}): " + ", ".join(parts) + ".",
                cpu_seconds=entry.busy,
                cpu_share=profile.cpu_share,
                calls=dict(calls[:5]),
            )
        )
    return findings


def find_bottlenecks(
    profile: Profile, *, memory_threshold_mb: float | None = None
) -> list[dict[str, Any]]:
    """Every rule finding for the profile, most severe first."""
    attribution = attribute(
        profile.tree,
        profile.total_duration or 0.0,
        profile.cpu_time,
        profile.run_queue_time,
        switches=profile.context_switches,
        infer_waits=not _memory_heavy(profile, memory_threshold_mb),
    )
    findings = _database_findings(profile, attribution)
    taken = {f["function"] for f in findings}
    findings += _waiting_findings(profile, attribution, taken)
    memory = _memory_finding(profile, attribution, memory_threshold_mb)
    hotspots = _cpu_findings(profile, attribution, set(taken))
    if memory is not None:
        # The hot spot in the allocating function is the allocating: one finding.
        same = [f for f in hotspots if f["function"] == memory["function"]]
        for folded in same:
            hotspots.remove(folded)
            memory["severity"] = _max_severity(memory["severity"], folded["severity"])
            memory["evidence"]["cpu_seconds"] = folded["evidence"]["cpu_seconds"]
        findings.append(memory)
    findings += hotspots
    findings.sort(key=lambda f: (-SEVERITY_RANK[f["severity"]], -f["impact"]))
    return findings


def _risks(
    profile: Profile, findings: list[dict[str, Any]], suggestions: list[dict[str, Any]]
) -> dict[str, list[str]]:
    current = [
        f"{f['severity']}: {f['description']}"
        for f in findings
        if f["severity"] in ("critical", "high")
    ]
    potential: list[str] = []
    kinds = {f["kind"] for f in findings}
    if "n_plus_one" in kinds:
        potential.append(
            "Query count grows with the number of rows: latency and database load rise with data size."
        )
    if "slow_sql" in kinds:
        potential.append(
            "Slow queries hold connections longer; under load the pool runs out and requests queue."
        )
    if "waiting" in kinds:
        potential.append(
            "Requests waiting on a downstream service tie up workers; its outages become yours."
        )
    if "cpu_hotspot" in kinds:
        potential.append(
            "CPU-bound request handling limits throughput per worker and blocks async event loops."
        )
    if "memory_growth" in kinds:
        potential.append(
            "Large allocations per request risk out-of-memory kills under concurrent load."
        )
    if profile.error_share > 0:
        current.append(
            f"{profile.error_share:.0%} of the analysed requests failed with a 5xx status."
        )
    recommendations = [s["title"] for s in suggestions if s["priority"] == "high"]
    recommendations += [s["title"] for s in suggestions if s["priority"] != "high"]
    if not findings:
        recommendations.append(
            "No bottleneck above the rule thresholds; keep watching the endpoint's p95."
        )
    return {
        "current_risks": current,
        "potential_issues": potential,
        "recommendations": recommendations,
    }


def analyze_profile(
    profile: Profile, *, memory_threshold_mb: float | None = None
) -> dict[str, Any]:
    """The SPEC §3 ``analysis_results`` for a profile."""
    findings = find_bottlenecks(profile, memory_threshold_mb=memory_threshold_mb)
    suggestions: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    libraries = libraries_in(profile.tree)
    for finding in findings:
        key = (finding["kind"], finding["function"])
        if key in seen:
            continue
        seen.add(key)
        suggestions.append(
            suggestion_for(finding, framework=profile.framework, libraries=libraries)
        )
    return {
        "performance_score": performance_score(profile.total_duration, findings),
        "bottleneck_analysis": findings,
        "optimization_suggestions": suggestions,
        "risk_assessment": _risks(profile, findings, suggestions),
    }


def rules_confidence(profile: Profile) -> float:
    """How much the rules could see: a tree, CPU time and SQL metrics each add evidence."""
    score = 0.5
    score += 0.2 if profile.tree is not None else 0.0
    score += 0.1 if profile.cpu_time is not None else 0.0
    score += 0.1 if profile.query_count or profile.slow_queries else 0.0
    score += 0.05 if profile.requests > 1 else 0.0
    return round(min(score, 0.95), 2)
