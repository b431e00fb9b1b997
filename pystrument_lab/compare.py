"""Version comparison: which endpoints got slower from version A to B, and is it real?

The test: a one-sided Mann–Whitney U test of "B's durations are stochastically
larger than A's", computed directly on the two versions' log-scale duration
histograms from the metric stream (every request, not only sampled ones).
Durations in one histogram bucket (4.4 % wide) count as ties, with the usual
tie correction and a normal approximation. An endpoint is flagged as a
regression when p < ``alpha`` (default 0.01), each version has at least
``MIN_REQUESTS`` requests, and its p50 or p95 grew by at least ``min_change``
(default 10 %), so a statistically certain but negligible change is not
flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from performance_monitor.core import histogram

from pystrument_lab.trends import endpoint_rows

MIN_REQUESTS = 5

COMPARISON_COLUMNS: dict[str, str] = {
    "route": "str", "method": "str", "count_a": "int", "count_b": "int",
    "p50_a": "float", "p50_b": "float", "p50_change": "float",
    "p95_a": "float", "p95_b": "float", "p95_change": "float",
    "error_rate_a": "float", "error_rate_b": "float",
    "p_value": "float", "regression": "bool",
}  # fmt: skip


def mann_whitney_greater(a: Mapping[int, int], b: Mapping[int, int]) -> float:
    """One-sided p-value that samples binned as ``b`` are larger than those binned as ``a``."""
    n_a, n_b = sum(a.values()), sum(b.values())
    if n_a == 0 or n_b == 0:
        return 1.0
    n = n_a + n_b
    rank_sum_b = 0.0
    ties = 0.0
    below = 0
    for bucket in sorted(set(a) | set(b)):
        count_a, count_b = a.get(bucket, 0), b.get(bucket, 0)
        together = count_a + count_b
        rank_sum_b += count_b * (below + (together + 1) / 2.0)
        ties += together**3 - together
        below += together
    u_b = rank_sum_b - n_b * (n_b + 1) / 2.0
    mean = n_a * n_b / 2.0
    variance = n_a * n_b / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 1.0
    z = (u_b - mean - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _change(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before <= 0:
        return None
    return after / before - 1.0


def compare_endpoint_docs(
    docs_a: Iterable[Mapping[str, Any]],
    docs_b: Iterable[Mapping[str, Any]],
    *,
    alpha: float = 0.01,
    min_change: float = 0.10,
) -> list[dict[str, Any]]:
    """Rows of COMPARISON_COLUMNS for every endpoint seen in either version, regressions first."""
    docs_a, docs_b = list(docs_a), list(docs_b)
    rows_a = {(r["route"], r["method"]): r for r in endpoint_rows(docs_a, 1.0)}
    rows_b = {(r["route"], r["method"]): r for r in endpoint_rows(docs_b, 1.0)}
    hist_a = _histograms(docs_a)
    hist_b = _histograms(docs_b)
    out = []
    for key in sorted(set(rows_a) | set(rows_b)):
        a, b = rows_a.get(key, {}), rows_b.get(key, {})
        p_value = mann_whitney_greater(hist_a.get(key, {}), hist_b.get(key, {}))
        p50_change = _change(a.get("p50"), b.get("p50"))
        p95_change = _change(a.get("p95"), b.get("p95"))
        grew = max(p50_change or 0.0, p95_change or 0.0) >= min_change
        enough = a.get("count", 0) >= MIN_REQUESTS and b.get("count", 0) >= MIN_REQUESTS
        out.append(
            {
                "route": key[0],
                "method": key[1],
                "count_a": a.get("count", 0),
                "count_b": b.get("count", 0),
                "p50_a": a.get("p50"),
                "p50_b": b.get("p50"),
                "p50_change": p50_change,
                "p95_a": a.get("p95"),
                "p95_b": b.get("p95"),
                "p95_change": p95_change,
                "error_rate_a": a.get("error_rate"),
                "error_rate_b": b.get("error_rate"),
                "p_value": p_value,
                "regression": bool(enough and grew and p_value < alpha),
            }
        )
    out.sort(key=lambda row: (not row["regression"], -(row["p95_change"] or 0.0)))
    return out


def _histograms(docs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[int, int]]:
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for doc in docs:
        grouped.setdefault((doc["route"], doc["method"]), []).append(doc.get("histogram") or {})
    return {key: histogram.merge(hists) for key, hists in grouped.items()}
