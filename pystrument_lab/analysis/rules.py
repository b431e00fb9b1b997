"""The rule engine: a deterministic analyser that works offline, without a key.

Input is a :class:`~pystrument_lab.analysis.profile.Profile` (one record, or
an endpoint's records merged); output is the SPEC §3 ``analysis_results``.

Rules (all times are means per request; thresholds are module constants):

- **n_plus_one** (database): at least ``N_PLUS_ONE_MIN_QUERIES`` queries whose
  mean time is under ``N_PLUS_ONE_MAX_QUERY_TIME`` — one small query per item.
- **slow_sql** (database): each distinct statement the SDK reported as slow.
- **waiting** (io): an application function that spends at least
  ``WAITING_MIN_SHARE`` of the request in wait frames below it (``[await]``,
  sleep, select, socket reads, lock waits). Read from the tree, because the
  SDK's CPU time covers one thread only.
- **cpu_hotspot** (computation): application functions whose own time plus
  the library frames they call (up to the next application function) reach
  ``HOTSPOT_MIN_SHARE`` of the request and ``HOTSPOT_MIN_TIME`` seconds.
- **memory_growth** (memory): memory delta of ``MEMORY_DELTA_MB`` or peak of
  ``MEMORY_PEAK_MB`` (or the project's ``alert_threshold.memory_usage``) per
  request; twenty such requests in flight hold 400 MB. Named after the
  deepest allocation-named application function owning at least
  ``MEMORY_FUNCTION_MIN_SHARE`` of those functions' busy time.
- **excessive_calls** (computation): an application function with at least
  ``EXCESSIVE_CALLS`` call sites per request.

Each finding names the function with its file:line, its severity (from its
impact, the share of the request's time it explains) and evidence.

``performance_score`` (0–100, higher is better)::

    100 - latency_penalty - findings_penalty
    latency_penalty  = 40 * clamp((mean duration - 0.1 s) / (2.0 s - 0.1 s), 0, 1)
    findings_penalty = min(60, sum(critical 25, high 15, medium 7, low 2 per finding))
"""

from __future__ import annotations

from typing import Any

from pystrument_lab.analysis.profile import Profile
from pystrument_lab.analysis.suggestions import suggestion_for
from pystrument_lab.calltree import CallNode, walk
from pystrument_lab.treestats import FunctionStats

__all__ = ["analyze_profile", "performance_score", "severity_for"]

N_PLUS_ONE_MIN_QUERIES = 10
N_PLUS_ONE_MAX_QUERY_TIME = 0.02
WAITING_MIN_SHARE = 0.3
HOTSPOT_MIN_SHARE = 0.15
HOTSPOT_MIN_TIME = 0.02
MEMORY_DELTA_MB = 10.0
MEMORY_FUNCTION_MIN_SHARE = 0.1
MEMORY_PEAK_MB = 20.0
EXCESSIVE_CALLS = 50
LATENCY_GOOD = 0.1
LATENCY_BAD = 2.0
SEVERITY_PENALTY = {"critical": 25, "high": 15, "medium": 7, "low": 2}

_DB_FILES = (
    "sqlite3",
    "sqlalchemy",
    "django/db",
    "psycopg",
    "pymysql",
    "mysql",
    "pymongo",
    "asyncpg",
    "peewee",
    "tortoise",
    "databases",
)
_DB_FUNCTIONS = (
    "execute",
    "executemany",
    "fetchall",
    "fetchone",
    "fetchmany",
    "cursor",
    "commit",
    "_execute",
    "query",
)
_DB_NAME_HINTS = ("query", "load", "sql", "db", "select", "find", "repository", "orm")
_MEMORY_NAME_HINTS = ("buffer", "export", "alloc", "build", "dump", "serialize", "cache", "copy")


def severity_for(impact: float) -> str:
    """critical ≥ 50 %, high ≥ 25 %, medium ≥ 10 % of the request's time, else low."""
    if impact >= 0.5:
        return "critical"
    if impact >= 0.25:
        return "high"
    if impact >= 0.1:
        return "medium"
    return "low"


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
    stats: FunctionStats | None,
    impact: float,
    description: str,
    severity: str | None = None,
    **evidence: Any,
) -> dict[str, Any]:
    impact = max(0.0, min(1.0, impact))
    function = stats.function if stats else "(request)"
    file_path = stats.file if stats else ""
    line = stats.line if stats else 0
    return {
        "type": type_,
        "severity": severity or severity_for(impact),
        "function": function,
        "file_path": file_path,
        "line_number": line,
        "location": f"{file_path}:{line}" if stats else "",
        "description": description,
        "impact": round(impact, 4),
        "kind": kind,
        "evidence": evidence,
    }


def _is_db_frame(node: CallNode) -> bool:
    path = node.file_path.replace("\\", "/").lower()
    return not node.is_application and (
        any(hint in path for hint in _DB_FILES) or node.function_name.lower() in _DB_FUNCTIONS
    )


_WAIT_FUNCTIONS = (
    "[await]",
    "sleep",
    "select",
    "poll",
    "epoll",
    "recv",
    "recv_into",
    "read",
    "readinto",
    "wait",
    "acquire",
    "connect",
    "getaddrinfo",
    "urlopen",
)


def _is_wait_frame(node: CallNode) -> bool:
    name = node.function_name.rsplit(".", 1)[-1].lower()
    return not node.is_application and (node.function_name == "[await]" or name in _WAIT_FUNCTIONS)


def _owner(node: CallNode) -> CallNode | None:
    """The application function a node's time belongs to (comprehensions belong to their function)."""
    current: CallNode | None = node
    while current is not None and not (
        current.is_application and not current.function_name.startswith("<")
    ):
        current = current.parent
    return current


def attributed_time(profile: Profile) -> tuple[dict[str, float], dict[str, float]]:
    """Per application function (by name): (busy, waiting) seconds per request.

    A function owns its self time and the self time of library frames below it
    up to the next application function; waiting is the part in wait frames
    (``[await]``, sleep, select, socket reads, lock waits).
    """
    busy: dict[str, float] = {}
    wait: dict[str, float] = {}
    if profile.tree is None:
        return busy, wait
    n = max(profile.tree.n_trees, 1)
    for node in walk(profile.tree.root):
        owner = _owner(node)
        if owner is None or node.is_other:
            continue
        bucket = wait if _is_wait_frame(node) else busy
        bucket[owner.function_name] = bucket.get(owner.function_name, 0.0) + node.self_time / n
    return busy, wait


def _stats_by_key(profile: Profile) -> dict[tuple[str, str, int], FunctionStats]:
    return {f.key: f for f in profile.functions}


def db_function(profile: Profile) -> FunctionStats | None:
    """The application function that issues the queries.

    The closest application caller of database-library frames, by time; else
    the heaviest application function whose name suggests data access; else
    the application function with the most self time.
    """
    apps = profile.app_functions()
    if profile.tree is not None:
        weights: dict[tuple[str, str, int], float] = {}
        for node in walk(profile.tree.root):
            if _is_db_frame(node):
                caller = next((a for a in reversed(node.ancestors()) if a.is_application), None)
                if caller is not None:
                    weights[caller.key] = weights.get(caller.key, 0.0) + node.duration
        if weights:
            key = max(weights, key=lambda k: weights[k])
            return _stats_by_key(profile).get(key)
    named = [f for f in apps if any(h in f.function.lower() for h in _DB_NAME_HINTS)]
    if named:
        return max(named, key=lambda f: f.total_time)
    return apps[0] if apps else None


def _memory_function(profile: Profile, taken: set[str]) -> FunctionStats | None:
    apps = profile.app_functions()
    named = [f for f in apps if any(h in f.function.lower() for h in _MEMORY_NAME_HINTS)]
    if named:
        return _innermost_working(profile, named)
    free = [f for f in apps if f.function not in taken]
    return free[0] if free else (apps[0] if apps else None)


def _innermost_working(profile: Profile, candidates: list[FunctionStats]) -> FunctionStats:
    """The deepest candidate owning ``MEMORY_FUNCTION_MIN_SHARE`` of the candidates' busy time.

    The most busy time alone flips between a handler and the helper it calls
    when their times are close (a handler hashing the buffer its helper
    built); the deeper function is the more specific place. Among equally
    deep candidates, the busiest; functions not in the tree count as depth 0.
    """
    busy, _ = attributed_time(profile)
    depth: dict[str, int] = {}
    names = {f.function for f in candidates}
    if profile.tree is not None:
        for node in walk(profile.tree.root):
            if node.function_name in names:
                level = len(node.ancestors())
                depth[node.function_name] = min(depth.get(node.function_name, level), level)
    total = sum(busy.get(f.function, 0.0) for f in candidates)
    floor = total * MEMORY_FUNCTION_MIN_SHARE
    working = [f for f in candidates if busy.get(f.function, 0.0) >= floor] or candidates
    return max(working, key=lambda f: (depth.get(f.function, 0), busy.get(f.function, 0.0)))


def find_bottlenecks(
    profile: Profile, *, memory_threshold_mb: float | None = None
) -> list[dict[str, Any]]:
    """Every rule finding for the profile, most impactful first."""
    findings: list[dict[str, Any]] = []
    wall = profile.total_duration
    sql_function = db_function(profile) if (profile.query_count or profile.slow_queries) else None
    db_name = sql_function.function if sql_function else "the database layer"
    database_claimed: set[str] = set()

    if profile.query_count >= N_PLUS_ONE_MIN_QUERIES and (
        profile.query_time / profile.query_count <= N_PLUS_ONE_MAX_QUERY_TIME
    ):
        impact = (
            profile.query_time / wall
            if wall and profile.query_time
            else (sql_function.total_share if sql_function else 0.0)
        )
        severity = severity_for(impact)
        if profile.query_count >= 50 and severity in ("low", "medium"):
            severity = "high"
        findings.append(
            _finding(
                "n_plus_one",
                "database",
                sql_function,
                impact,
                f"N+1 queries: {profile.query_count:.0f} queries per request from {db_name} "
                f"({profile.query_time * 1000:.1f} ms in total, "
                f"{profile.query_time / profile.query_count * 1000:.2f} ms each): one query per item.",
                severity,
                query_count=profile.query_count,
                query_time=profile.query_time,
            )
        )
        database_claimed.add(db_name)

    seen_statements: set[str] = set()
    for query in profile.slow_queries:
        statement = " ".join(str(query.get("statement") or "").split())
        if statement in seen_statements or len(seen_statements) >= 3:
            continue
        seen_statements.add(statement)
        duration = float(query.get("duration") or 0.0)
        findings.append(
            _finding(
                "slow_sql",
                "database",
                sql_function,
                duration / wall if wall else 0.0,
                f"Slow SQL in {db_name}: {duration:.3f} s for {statement[:200]}",
                statement=statement[:500],
                duration=duration,
            )
        )
        database_claimed.add(db_name)

    cpu_share = profile.cpu_share
    by_name = {f.function: f for f in profile.app_functions()}
    busy, wait = attributed_time(profile)
    taken: set[str] = set(database_claimed)
    for name, seconds in sorted(wait.items(), key=lambda item: -item[1]):
        share = seconds / wall if wall else 0.0
        if share < WAITING_MIN_SHARE or name in taken or name not in by_name:
            continue
        stats = by_name[name]
        findings.append(
            _finding(
                "waiting",
                "io",
                stats,
                share,
                f"Waiting: {stats.function} ({stats.file}:{stats.line}) waits {seconds * 1000:.1f} ms "
                f"per request ({share:.0%}) on a downstream call, sleep or lock"
                + (
                    f"; CPU time is {cpu_share:.0%} of wall time." if cpu_share is not None else "."
                ),
                cpu_share=cpu_share,
                wait_share=share,
            )
        )
        taken.add(name)
    ranked = sorted(busy.items(), key=lambda item: -item[1])
    for name, seconds in [item for item in ranked if item[0] not in taken][:2]:
        share = seconds / wall if wall else 0.0
        if share < HOTSPOT_MIN_SHARE or seconds < HOTSPOT_MIN_TIME or name not in by_name:
            break
        stats = by_name[name]
        findings.append(
            _finding(
                "cpu_hotspot",
                "computation",
                stats,
                share,
                f"CPU hot spot: {stats.function} ({stats.file}:{stats.line}) computes for "
                f"{seconds * 1000:.1f} ms per request ({share:.0%}) in its own code and the "
                "library calls it makes.",
                self_time=seconds,
                cpu_share=cpu_share,
            )
        )
        taken.add(name)

    delta, peak = profile.memory_delta or 0.0, profile.peak_memory or 0.0
    peak_limit = min(MEMORY_PEAK_MB, memory_threshold_mb) if memory_threshold_mb else MEMORY_PEAK_MB
    if delta >= MEMORY_DELTA_MB or peak >= peak_limit:
        memory_stats = _memory_function(profile, taken)
        size = max(delta, peak)
        severity = (
            "critical"
            if size >= 500
            else "high"
            if size >= 100
            else "medium"
            if size >= 20
            else "low"
        )
        findings.append(
            _finding(
                "memory_growth",
                "memory",
                memory_stats,
                memory_stats.total_share if memory_stats else 0.0,
                f"Memory growth: peak {peak:.1f} MB, delta {delta:+.1f} MB per request"
                + (
                    f", allocated in {memory_stats.function} ({memory_stats.file}:{memory_stats.line})."
                    if memory_stats
                    else "."
                ),
                severity,
                peak_memory=peak,
                memory_delta=delta,
            )
        )

    for stats in profile.app_functions():
        calls = stats.occurrences / max(profile.requests, 1)
        if calls >= EXCESSIVE_CALLS:
            findings.append(
                _finding(
                    "excessive_calls",
                    "computation",
                    stats,
                    stats.total_share,
                    f"Excessive calls: {stats.function} ({stats.file}:{stats.line}) is called from "
                    f"{calls:.0f} places per request.",
                    calls=calls,
                )
            )
    findings.sort(key=lambda f: (-SEVERITY_PENALTY[f["severity"]], -f["impact"]))
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
    if "cpu_hotspot" in kinds or "excessive_calls" in kinds:
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
    for finding in findings:
        key = (finding["kind"], finding["function"])
        if key in seen:
            continue
        seen.add(key)
        evidence = finding["evidence"]
        values = {
            "queries": profile.query_count,
            "duration": evidence.get("duration", 0.0),
            "statement": evidence.get("statement", ""),
            "memory": max(profile.memory_delta or 0.0, profile.peak_memory or 0.0),
            "calls": evidence.get("calls", 0.0),
        }
        suggestions.append(suggestion_for(finding, values))
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
