"""The LLM analyser over real HTTP through litellm to a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pystrument_lab.analysis import jobs, profile
from pystrument_lab.analysis.config import load_config
from pystrument_lab.analysis.runner import run_analysis
from pystrument_lab.analysis.worker import process_one
from pystrument_lab.store import Store
from tests.integration.analysis.fake_llm import VALID_ANSWER, FakeLLM, fake_llm, write_config
from tests.utils.factories import make_record

SOURCE = textwrap.dedent(
    """\
    import math


    def compute_report_statistics(rows):
        seen = list(rows)
        return sum(x * x for x in rows if x in seen)  # quadratic membership
    """
)


@pytest.fixture
def llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    monkeypatch.setenv("FAKE_LLM_TOKEN", "s3cret")
    with fake_llm() as fake:
        monkeypatch.setenv(
            "PYSTRUMENT_AI_CONFIG", write_config(tmp_path / "ai.yaml", fake.url, timeout=1.0)
        )
        yield fake


def report_record(tmp_path: Path) -> dict[str, Any]:
    source = tmp_path / "reports.py"
    source.write_text(SOURCE)
    nodes = [
        {
            "call_id": 0,
            "parent_call_id": None,
            "function_name": "report",
            "file_path": str(source),
            "line_number": 1,
            "duration": 0.5,
            "self_time": 0.05,
            "depth": 0,
            "call_order": 0,
            "is_application": True,
        },
        {
            "call_id": 1,
            "parent_call_id": 0,
            "function_name": "compute_report_statistics",
            "file_path": str(source),
            "line_number": 4,
            "duration": 0.45,
            "self_time": 0.45,
            "depth": 1,
            "call_order": 0,
            "is_application": True,
        },
    ]
    return make_record(
        path="/api/report",
        route="/api/report",
        duration=0.5,
        nodes=nodes,
        # CPU-bound: the CPU time covers the wall time.
        performance_metrics={"total_duration": 0.5, "cpu_time": 0.49},
    )


def test_prompt_carries_the_hot_function_and_its_source(llm: FakeLLM, tmp_path: Path) -> None:
    result = run_analysis(profile.from_record(report_record(tmp_path)))
    assert result["status"] == "completed", result["error"]
    [request] = llm.requests
    prompt = llm.prompts()[0]
    assert "compute_report_statistics" in prompt
    assert "x in seen)  # quadratic membership" in prompt  # the function's source
    assert "CPU hot spot" in prompt  # the rule findings
    assert request["model"] == "test-model"
    assert llm.headers[0]["authorization"] == "Bearer s3cret"


def test_valid_answer_is_stored_in_the_spec_structure(
    llm: FakeLLM, store: Store, tmp_path: Path
) -> None:
    record = report_record(tmp_path)
    store.insert_records("pk_test", [record])
    job = jobs.create_job(store, "pk_test", trace_id=record["trace_id"])
    done = process_one(store, "w1", lease=30, time_limit=60, config=load_config())
    assert done is not None and done["status"] == "completed" and done["stored"]
    stored = store.analyses.find_one({"task_id": job["task_id"]})
    assert stored["status"] == "completed"
    results = stored["analysis_results"]
    expected = {k: v for k, v in VALID_ANSWER.items() if k != "confidence_score"}
    assert {k: results[k] for k in expected} == expected
    assert results["rule_findings"][0]["function"] == "compute_report_statistics"
    assert stored["ai_service"]["provider"] == "custom"
    assert stored["ai_service"]["model"] == "test-model"
    meta = stored["analysis_metadata"]
    assert meta["tokens_used"] == 150
    assert meta["cost"] == 0.0  # litellm has no price for a custom model
    assert meta["confidence_score"] == 0.8
    assert 0 < meta["duration"] < 10
    # The prompt (with the evidence the rules read) and the answer are kept.
    assert meta["answer"] == json.dumps(VALID_ANSWER)
    assert [m["role"] for m in meta["prompt"]] == ["system", "user"]
    assert "Evidence recorded by the SDK" in meta["prompt"][1]["content"]
    assert llm.prompts()[0].endswith(meta["prompt"][1]["content"])
    assert stored["analysis_input"]["performance_summary"]["route"] == "/api/report"
    assert stored["completed_at"] is not None


def test_one_retry_after_an_invalid_answer(llm: FakeLLM, tmp_path: Path) -> None:
    llm.script(
        (200, "Sure! Here is my analysis: it is slow.", 0.0), (200, json.dumps(VALID_ANSWER), 0.0)
    )
    result = run_analysis(profile.from_record(report_record(tmp_path)))
    assert result["status"] == "completed"
    assert result["analysis_metadata"]["attempts"] == 2
    assert result["analysis_metadata"]["tokens_used"] == 300
    assert "was invalid" in llm.prompts()[1]


def test_malformed_json_twice_fails_with_the_reason(llm: FakeLLM, tmp_path: Path) -> None:
    llm.script((200, '{"performance_score": 50, "bottleneck_analysis": [', 0.0))
    result = run_analysis(profile.from_record(report_record(tmp_path)))
    assert result["status"] == "failed"
    assert result["analysis_results"] is None
    assert result["error"]["code"] == 20005
    assert "invalid answer twice" in result["error"]["message"]
    assert "not JSON" in result["error"]["message"]
    assert len(llm.requests) == 2


def test_schema_violation_fails(llm: FakeLLM, tmp_path: Path) -> None:
    llm.script((200, json.dumps({**VALID_ANSWER, "performance_score": 250}), 0.0))
    result = run_analysis(profile.from_record(report_record(tmp_path)))
    assert result["status"] == "failed"
    assert "performance_score" in result["error"]["message"]


def test_http_500_fails_with_the_reason(llm: FakeLLM, tmp_path: Path) -> None:
    llm.script((500, "model overloaded", 0.0))
    result = run_analysis(profile.from_record(report_record(tmp_path)))
    assert result["status"] == "failed"
    assert "'fake'" in result["error"]["message"]
    assert "500" in result["error"]["message"]
    assert len(llm.requests) == 1  # no silent retries of a failing service


def test_timeout_fails_with_the_reason(llm: FakeLLM, tmp_path: Path) -> None:
    llm.script((200, json.dumps(VALID_ANSWER), 3.0))
    result = run_analysis(profile.from_record(report_record(tmp_path)))
    assert result["status"] == "failed"
    assert result["error"]["message"] == "AI service 'fake' timed out after 1 s"
    assert result["analysis_metadata"]["duration"] < 2.9


def test_service_down_can_fall_back_to_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PYSTRUMENT_AI_CONFIG", write_config(tmp_path / "ai.yaml", "http://127.0.0.1:9/v1")
    )
    record = report_record(tmp_path)
    failed = run_analysis(profile.from_record(record))
    assert failed["status"] == "failed"
    assert "unreachable" in failed["error"]["message"] or "Connection" in failed["error"]["message"]
    result = run_analysis(profile.from_record(record), fallback=True)
    assert result["status"] == "completed"
    assert result["ai_service"]["provider"] == "rules"
    assert result["analysis_metadata"]["requested_service"] == "fake"
    assert result["analysis_metadata"]["fallback_reason"] == failed["error"]["message"]
    assert (
        result["analysis_results"]["bottleneck_analysis"][0]["function"]
        == "compute_report_statistics"
    )


def test_rules_service_and_unknown_service(llm: FakeLLM, tmp_path: Path) -> None:
    record = report_record(tmp_path)
    rules = run_analysis(profile.from_record(record), service="rules")
    assert rules["ai_service"]["provider"] == "rules" and llm.requests == []
    unknown = run_analysis(profile.from_record(record), service="nope")
    assert unknown["status"] == "failed"
    assert "'nope' is not configured" in unknown["error"]["message"]


def test_model_override_reaches_the_server(llm: FakeLLM, tmp_path: Path) -> None:
    result = run_analysis(profile.from_record(report_record(tmp_path)), model="other-model")
    assert result["ai_service"]["model"] == "other-model"
    assert llm.requests[0]["model"] == "other-model"
