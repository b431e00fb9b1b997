"""Generated traffic against every operation of the collector's OpenAPI schema.

Schemathesis builds requests from the live collector's ``/openapi.json``; each
answer must be an envelope with a documented code and never a 5xx (the store
is up throughout). The SDK endpoints read their bodies by hand, so the schema
does not describe them: they get a second, body-level fuzzer of their own.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.utils.audit import api_operations, assert_envelope, scaled
from tests.utils.factories import make_record
from tests.utils.services import CollectorProcess

EXAMPLES = scaled(20, 300)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)

#: Codes a body-level fuzz of the SDK endpoints may legitimately get.
INGEST_CODES = {0, 10001, 20004}


@pytest.fixture(scope="module")
def live_schema(shared_collector: CollectorProcess) -> Any:
    return schemathesis.openapi.from_url(shared_collector.url + "/openapi.json")


@pytest.fixture(scope="module")
def credentials(
    shared_collector: CollectorProcess, shared_project: dict[str, Any]
) -> dict[str, str]:
    # Both credentials at once: admin endpoints see the token, SDK endpoints the key.
    return {**shared_collector.admin_headers, "X-Project-Key": shared_project["project_key"]}


def test_schema_lists_every_route(live_schema: Any) -> None:
    served = {(path, method.upper()) for path, method in api_operations()}
    documented = {
        (operation.path, operation.method.upper())
        for result in live_schema.get_all_operations()
        for operation in [result.ok()]
    }
    assert served == documented


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), api_operations())
def test_operation_answers_envelopes(
    path: str,
    method: str,
    mode: schemathesis.GenerationMode,
    live_schema: Any,
    shared_collector: CollectorProcess,
    credentials: dict[str, str],
) -> None:
    """Valid inputs (positive) and inputs that break the schema (negative): never a 5xx."""
    operation = live_schema[path][method]
    seen: dict[int, int] = {}
    with httpx.Client(base_url=shared_collector.url, timeout=30.0) as client:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            request = case.as_transport_kwargs(base_url=shared_collector.url)
            headers = {**(request.get("headers") or {}), **credentials}
            if request.get("cookies"):
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in request["cookies"].items())
            try:
                response = client.request(
                    request["method"],
                    request["url"],
                    params=request.get("params"),
                    headers=headers,
                    **_body(request),
                )
            except httpx.InvalidURL as exc:
                # A negative case can make a query longer than any client sends
                # (httpx stops at 64 KiB): nothing reaches the server to answer.
                assert mode is schemathesis.GenerationMode.NEGATIVE and "too long" in str(exc)
                reject()
            body = assert_envelope(response)
            seen[body["code"]] = seen.get(body["code"], 0) + 1

        try:
            run()
        except Unsatisfiable:
            # An operation without inputs has nothing a negative case could break.
            assert mode is schemathesis.GenerationMode.NEGATIVE and not seen
            return
    assert sum(seen.values()) >= 1, seen  # an operation without inputs has one case
    assert not {10002, 10003} & set(seen), seen  # the credentials were accepted throughout
    assert shared_collector.process is not None and shared_collector.process.poll() is None


def _body(request: dict[str, Any]) -> dict[str, Any]:
    if "json" in request:
        return {"json": request["json"]}
    if "data" in request:
        return {"content": request["data"]}
    return {}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)

record_fields = st.sampled_from(
    [
        "trace_id",
        "timestamp",
        "request_info",
        "response_info",
        "performance_metrics",
        "function_calls",
        "profile_session",
        "version_info",
        "environment",
        "tags",
    ]
)


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with a few fields replaced by arbitrary JSON or removed."""
    record = make_record(trace_id=draw(st.text("0123456789abcdef", min_size=1, max_size=40)))
    for field in draw(st.lists(record_fields, max_size=3, unique=True)):
        if draw(st.booleans()):
            record.pop(field, None)
        else:
            record[field] = draw(json_values)
    return record


@pytest.mark.parametrize("endpoint", ["/api/v1/performance/collect", "/api/v1/performance/metrics"])
def test_sdk_bodies_answer_envelopes(
    endpoint: str, shared_collector: CollectorProcess, shared_project: dict[str, Any]
) -> None:
    headers = {"X-Project-Key": shared_project["project_key"], "Content-Type": "application/json"}
    codes: dict[int, int] = {}
    payloads = (
        json_values
        | st.builds(lambda rs: {"records": rs}, st.lists(mutated_records(), max_size=4))
        | mutated_records()
        | st.builds(lambda ms: {"metrics": ms}, st.lists(json_values, max_size=3))
    )
    with httpx.Client(base_url=shared_collector.url, timeout=30.0) as client:

        @FUZZ_SETTINGS
        @given(payload=payloads, compressed=st.booleans())
        def run(payload: Any, compressed: bool) -> None:
            raw = json.dumps(payload).encode()
            extra = {"Content-Encoding": "gzip"} if compressed else {}
            response = client.post(
                endpoint,
                content=gzip.compress(raw) if compressed else raw,
                headers={**headers, **extra},
            )
            body = assert_envelope(response)
            assert body["code"] in INGEST_CODES, body
            codes[body["code"]] = codes.get(body["code"], 0) + 1

        run()
    assert set(codes) - {0}, codes  # some payloads were refused, with a documented code
    assert httpx.get(shared_collector.url + "/health").json()["code"] == 0
