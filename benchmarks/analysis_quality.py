"""How often the rule engine names a planted bottleneck first, on apps it was not written for.

Runs the corpus of ``tests/analysis_corpus`` end to end (Flask and Django
under gunicorn, FastAPI under uvicorn, the real SDK at 100 % with SQL and
memory tracking, a real collector and an embedded store), then prints, per
case, the expected (type, function) and the first finding of the endpoint
analysis and of a warm single-record analysis, hit or miss, what the record
measured for each miss, and the top-1 rates. A healthy endpoint is a hit when
no critical or high finding is raised. ``--runs N`` repeats the whole run.

    .venv/bin/python benchmarks/analysis_quality.py [--runs 1] [--requests 6] [--framework flask] [--evidence]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pystrument_lab.embedded import EmbeddedServer, free_port  # noqa: E402
from tests.analysis_corpus.cases import CASES  # noqa: E402
from tests.analysis_corpus.harness import CaseOutcome, alarms, run_corpus, top_finding  # noqa: E402


def _shown(found: tuple[str, str] | None) -> str:
    return f"{found[0]} {found[1]}" if found else "(none)"


def _got(outcome: CaseOutcome, which: str) -> str:
    report = outcome.endpoint if which == "endpoint" else outcome.record
    if outcome.case.healthy:
        raised = alarms(report)
        return "no alarm" if not raised else ", ".join(" ".join(a) for a in raised)
    return _shown(top_finding(report))


def table(outcomes: list[CaseOutcome]) -> str:
    lines = [
        "| case | framework | expected | endpoint analysis | | single record | |",
        "|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        case = outcome.case
        expected = "no critical/high" if case.healthy else f"{case.type} {case.function}"
        lines.append(
            f"| `{case.path}` | {case.framework} | {expected} "
            f"| {_got(outcome, 'endpoint')} | {'hit' if outcome.endpoint_hit else 'MISS'} "
            f"| {_got(outcome, 'record')} | {'hit' if outcome.record_hit else 'MISS'} |"
        )
    return "\n".join(lines)


def rates(outcomes: list[CaseOutcome]) -> str:
    planted = [o for o in outcomes if not o.case.healthy]
    healthy = [o for o in outcomes if o.case.healthy]
    endpoint = sum(o.endpoint_hit for o in planted)
    record = sum(o.record_hit for o in planted)
    quiet = sum(o.endpoint_hit for o in healthy)
    return (
        f"top-1 endpoint analysis {endpoint}/{len(planted)} ({endpoint / len(planted):.0%}), "
        f"single record {record}/{len(planted)} ({record / len(planted):.0%}); "
        f"healthy endpoints without alarm {quiet}/{len(healthy)}"
    )


def misses(outcomes: list[CaseOutcome], every: bool = False) -> str:
    lines = []
    for outcome in outcomes:
        if outcome.endpoint_hit and outcome.record_hit and not every:
            continue
        lines.append(f"- `{outcome.case.path}` planted: {outcome.case.evidence}")
        lines.append(f"  measured (warm record): {outcome.evidence}")
        for which, report in (("endpoint", outcome.endpoint), ("record", outcome.record)):
            findings = (report.get("analysis_results") or {}).get("bottleneck_analysis") or []
            shown = "; ".join(
                f"{f['severity']} {f['type']} {f['function']} impact {f.get('impact', 0):.2f}"
                for f in findings[:3]
            )
            lines.append(f"  {which} findings: {shown or '(none)'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--requests", type=int, default=6, help="requests per endpoint")
    parser.add_argument("--framework", action="append", help="only these frameworks")
    parser.add_argument("--evidence", action="store_true", help="evidence of hits too")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.framework or c.framework in args.framework]
    with tempfile.TemporaryDirectory(prefix="analysis-quality-") as scratch:
        home = Path(scratch)
        server = EmbeddedServer(home / "store", port=free_port())
        url = server.ensure_running()
        try:
            for run in range(1, args.runs + 1):
                started = time.monotonic()
                run_home = home / f"run-{run}"
                run_home.mkdir()
                outcomes = run_corpus(url, run_home, cases=cases, requests=args.requests)
                load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
                print(f"\n## run {run} ({time.monotonic() - started:.0f} s, load average {load})\n")
                print(table(outcomes))
                print("\n" + rates(outcomes))
                title = "evidence" if args.evidence else "misses"
                print(f"\n{title}:\n" + (misses(outcomes, args.evidence) or "(none)"))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
