"""The rule engine on the planted-bottleneck corpus: top-1 (type, function) per endpoint.

One run of :func:`tests.analysis_corpus.harness.run_corpus` (Flask and Django
under gunicorn, FastAPI under uvicorn, the real SDK at 100 % with SQL and
memory tracking, the real collector and store) serves every case; each test
reads one case's endpoint analysis. A healthy endpoint must raise no critical
or high finding. The identification table is ``benchmarks/analysis_quality.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.analysis_corpus.cases import HEALTHY, PLANTED, Case
from tests.analysis_corpus.harness import (
    REQUESTS_PER_CASE,
    CaseOutcome,
    alarms,
    run_corpus,
    top_finding,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(
    mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, CaseOutcome]]:
    outcomes = run_corpus(mongo_url, tmp_path_factory.mktemp("analysis-corpus"))
    yield {outcome.case.name: outcome for outcome in outcomes}


def _served(outcome: CaseOutcome) -> None:
    assert outcome.statuses == [200] * REQUESTS_PER_CASE, outcome.statuses
    assert outcome.records == REQUESTS_PER_CASE


@pytest.mark.parametrize("case", PLANTED, ids=lambda case: case.name)
def test_endpoint_analysis_names_the_planted_bottleneck_first(
    corpus: dict[str, CaseOutcome], case: Case
) -> None:
    outcome = corpus[case.name]
    _served(outcome)
    findings = outcome.endpoint["analysis_results"]["bottleneck_analysis"]
    assert top_finding(outcome.endpoint) == (case.type, case.function), (
        f"{case.evidence}\nmeasured: {outcome.evidence}\nfindings: "
        + "; ".join(f"{f['severity']} {f['type']} {f['function']}" for f in findings)
    )


@pytest.mark.parametrize("case", HEALTHY, ids=lambda case: case.name)
def test_healthy_endpoint_raises_no_alarm(corpus: dict[str, CaseOutcome], case: Case) -> None:
    outcome = corpus[case.name]
    _served(outcome)
    assert alarms(outcome.endpoint) == [], outcome.evidence
