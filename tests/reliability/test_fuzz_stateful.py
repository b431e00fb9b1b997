"""Stateful fuzzing of the collector API: sequences of calls that follow its OpenAPI links.

Schemathesis builds a state machine from the links the schema declares
(``collector/api/links.py``): create a project, then read, update, list the
records of, analyse and delete it, in generated orders and with generated
inputs, positive and negative. Every answer must be an envelope whose code
matches its status, never a 5xx, and must conform to the schema; the
stateful checks hold too (a deleted project is gone, a created one can be
read). Each project the machine creates gets a few records from an SDK, so
the record and analysis links have something to follow.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.utils.audit import LONG, assert_envelope, scaled
from tests.utils.factories import make_record
from tests.utils.services import CollectorProcess

COLLECT = "/api/v1/performance/collect"
STEPS = settings(
    max_examples=scaled(10, 150),
    stateful_step_count=6,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],
    # The same sequences on every run: which links a few examples happen to follow
    # must not decide whether the test passes (the long mode explores more).
    derandomize=not LONG,
)


def test_call_sequences_answer_envelopes_and_keep_state(
    shared_collector: CollectorProcess, shared_project: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_url(shared_collector.url + "/openapi.json")
    credentials = {
        **shared_collector.admin_headers,
        "X-Project-Key": shared_project["project_key"],
    }
    seen: dict[str, set[int]] = {}

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {**(case.headers or {}), **credentials}}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            label = f"{case.method} {case.path}"
            seen.setdefault(label, set()).add(response.status_code)
            if label == "POST /api/v1/projects" and response.status_code == 200:
                created = response.json()["data"]["project_key"]
                self.created.append(created)
                _send_records(shared_collector.url, created)

        def setup(self) -> None:
            self.created: list[str] = []

        def teardown(self) -> None:
            # Each scenario starts from the same store: a name taken by an earlier
            # scenario would answer 409 where the same steps once got 200, and
            # hypothesis requires the same steps to behave the same.
            for project_key in self.created:
                httpx.delete(
                    f"{shared_collector.url}/api/v1/projects/{project_key}",
                    headers=shared_collector.admin_headers,
                    timeout=30.0,
                )

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            # A 5xx only as a documented "unavailable" code (an AI service that is not
            # configured is a 503 by SPEC §2), with its status: assert_envelope.
            body = assert_envelope(_as_httpx(response))
            assert body["code"] not in (10002, 10003), body  # the credentials held throughout
            # The schema cannot say every bound a value has (a date between 2000 and
            # 2200, a range like "24h"): such a refusal is a 10001, checked above,
            # not a schema violation; 5xx are checked above. Every other check,
            # stateful ones included, runs.
            case.validate_response(
                response,
                excluded_checks=[positive_data_acceptance, not_a_server_error],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Sequences.run(settings=STEPS)

    # The links were followed: projects were created, then read and deleted by their key.
    assert 200 in seen.get("POST /api/v1/projects", set()), seen
    assert 200 in seen.get("GET /api/v1/projects/{project_key}", set()), seen
    assert 200 in seen.get("DELETE /api/v1/projects/{project_key}", set()), seen
    assert shared_collector.process is not None and shared_collector.process.poll() is None


def _send_records(base_url: str, project_key: str) -> None:
    """What an SDK of the new project sends: three sampled records."""
    records = [make_record(trace_id=uuid.uuid4().hex) for _ in range(3)]
    answer = httpx.post(
        base_url + COLLECT,
        json={"records": records},
        headers={"X-Project-Key": project_key},
        timeout=30.0,
    )
    assert answer.json()["code"] == 0, answer.text


def _as_httpx(response: Any) -> httpx.Response:
    """Schemathesis's response as the shape ``assert_envelope`` reads."""
    return httpx.Response(response.status_code, content=response.content)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("POST /api/v1/projects", "DELETE /api/v1/projects/{project_key}"),
        (
            "GET /api/v1/performance/records",
            "GET /api/v1/performance/records/{project_key}/{record_key}",
        ),
        (
            "POST /api/v1/analysis/analyze/{performance_record_id}",
            "GET /api/v1/analysis/result/{analysis_id}",
        ),
    ],
)
def test_the_schema_links_answers_to_the_requests_they_feed(
    source: str, target: str, shared_collector: CollectorProcess
) -> None:
    spec = httpx.get(shared_collector.url + "/openapi.json", timeout=30.0).json()
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    method, path = source.split(" ", 1)
    links = spec["paths"][path][method.lower()]["responses"]["200"]["links"]
    assert ids[target] in {link["operationId"] for link in links.values()}, links
