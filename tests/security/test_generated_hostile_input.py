"""Generated hostile input against a running collector: no 5xx, the right code, nothing half-stored.

Each example is a batch of records, some valid and some carrying one or more
hostile traits drawn from the classes real attackers and broken clients
produce: deep nesting, non-finite and out-of-range numbers (as raw JSON
text, which no JSON encoder would write), lone surrogates in keys and values,
malformed call trees, markup, huge strings, negative durations, the original
data model's shapes. The answer is checked against what the batch held, and
the store against the answer: each record is stored with its tree or not at
all, and every valid record is stored once whatever its neighbours held.
Query parameters of the read API get generated ranges, buckets, dates and
pages. Afterwards, everything the dashboard reads still loads.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pystrument_lab import Lab
from pystrument_lab.store import Store
from tests.utils.audit import assert_envelope, new_project, running_collector, scaled
from tests.utils.factories import make_record
from tests.utils.services import CollectorProcess

COLLECT = "/api/v1/performance/collect"
HOSTILE = settings(
    max_examples=scaled(60, 600),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
#: Placeholders replaced in the encoded JSON by text no encoder writes.
RAW = {
    "NAN": "NaN",
    "INF": "Infinity",
    "NEGINF": "-Infinity",
    "BIGFLOAT": "1e999",
    "BIGINT": "9" * 30,
    "SURROGATE": '"\\udcff\\ud800"',
}
MARKUP = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=1</script>",
    "[x](javascript:window.__pwned=1)",
    "`</code><svg onload=alert(1)>",
    "{{7*7}}${7*7}",
]
TRIED = {"cases": 0, "5xx": 0}


@pytest.fixture(scope="module")
def collector(
    mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    with running_collector(mongo_url, tmp_path_factory.mktemp("generated")) as process:
        yield process


@pytest.fixture(scope="module")
def store(collector: CollectorProcess) -> Iterator[Store]:
    handle = Store(
        collector.env["PYSTRUMENT_MONGODB_URL"], database=collector.env["PYSTRUMENT_DATABASE"]
    )
    yield handle
    handle.close()


def _raw(name: str) -> str:
    return f"@@{name}@@"


numbers = st.sampled_from([_raw(name) for name in RAW if name != "SURROGATE"]) | st.sampled_from(
    [-1, -1e-9, 2**63, 2**64, -(2**63) - 1, 10**16, 86_401.0]
)
texts = (
    st.sampled_from(MARKUP)
    | st.just(_raw("SURROGATE"))
    | st.text(max_size=30)
    | st.just("x" * 70_000)
)


def _deep(match: re.Match[str]) -> str:
    depth = int(match.group(1))
    return (
        '{"k":' * (depth // 2)
        + "[" * (depth - depth // 2)
        + "1"
        + "]" * (depth - depth // 2)
        + "}" * (depth // 2)
    )


def _trait_numbers(draw: st.DrawFn, record: dict[str, Any]) -> None:
    section, field = draw(
        st.sampled_from(
            [
                ("performance_metrics", "total_duration"),
                ("performance_metrics", "cpu_time"),
                ("memory_usage", "peak_memory"),
                ("memory_usage", "memory_delta"),
                ("database_metrics", "query_count"),
                ("response_info", "response_size"),
                ("node", "duration"),
                ("node", "call_id"),
            ]
        )
    )
    value = draw(numbers)
    metrics = record["performance_metrics"]
    if section == "performance_metrics":
        metrics[field] = value
    elif section in ("memory_usage", "database_metrics"):
        metrics.setdefault(section, {})[field] = value
    elif section == "node":
        record["function_calls"][-1][field] = value
    else:
        record[section][field] = value


def _trait_text(draw: st.DrawFn, record: dict[str, Any]) -> None:
    value = draw(texts)
    where = draw(st.sampled_from(["path", "route", "header-key", "header", "tag", "function"]))
    info = record["request_info"]
    if where in ("path", "route"):
        info[where] = value
    elif where == "header-key":
        info["headers"] = {value: "v"}
    elif where == "header":
        info["headers"] = {"x-h": value}
    elif where == "tag":
        record["tags"] = {value: value}
    else:
        record["function_calls"][-1]["function_name"] = value


def _trait_tree(draw: st.DrawFn, record: dict[str, Any]) -> None:
    count = draw(st.integers(1, 8))
    nodes = []
    for call_id in range(count):
        nodes.append(
            {
                "call_id": call_id,
                "parent_call_id": draw(st.none() | st.integers(-1, count)),
                "function_name": f"f{call_id}",
                "duration": 0.01,
                "depth": draw(st.integers(0, 4)),
            }
        )
    record["function_calls"] = nodes


def _trait_nesting(draw: st.DrawFn, record: dict[str, Any]) -> None:
    depth = draw(st.integers(66, 3000))
    # Written into the text after encoding: json.dumps itself cannot nest that deep.
    where = draw(st.sampled_from(["tags", "request_info", "function_calls"]))
    if where == "tags":
        record["tags"] = {"deep": f"@@DEEP{depth}@@"}
    elif where == "request_info":
        record["request_info"]["query_params"] = {"q": f"@@DEEP{depth}@@"}
    else:
        record["function_calls"][-1]["function_name"] = f"@@DEEP{depth}@@"


def _trait_shape(draw: st.DrawFn, record: dict[str, Any]) -> None:
    database = record["performance_metrics"].setdefault("database_metrics", {})
    database["slow_queries"] = draw(
        st.integers(-3, 2**63)
        | st.lists(st.fixed_dictionaries({"statement": texts, "duration": st.floats(-1, 10)}))
        | st.text(max_size=5)
    )


TRAITS = [_trait_numbers, _trait_text, _trait_tree, _trait_nesting, _trait_shape]


@st.composite
def batches(draw: st.DrawFn) -> tuple[bytes, list[str], list[str], bool]:
    """(JSON body, trace ids that must be stored, the others, whether the body nests too deep).

    A body nesting deeper than the collector's bound is refused whole (10001):
    then no trace id must be stored.
    """
    valid: list[str] = []
    hostile: list[str] = []
    records = []
    for _ in range(draw(st.integers(1, 5))):
        trace_id = draw(st.uuids()).hex
        record = make_record(trace_id=trace_id, route="/gen/{id}", path="/gen/1")
        traits = draw(st.lists(st.sampled_from(TRAITS), max_size=3, unique=True))
        for trait in traits:
            trait(draw, record)
        (hostile if traits else valid).append(trace_id)
        records.append(record)
    text = json.dumps({"records": records})
    for name, literal in RAW.items():
        text = text.replace(json.dumps(_raw(name)), literal).replace(_raw(name), "\\udcff")
    if "@@DEEP" in text:
        text = re.sub(r'"@@DEEP(\d+)@@"', _deep, text)
        return text.encode(), [], valid + hostile, True
    return text.encode(), valid, hostile, False


def test_generated_hostile_batches_are_answered_and_stored_whole(
    collector: CollectorProcess, store: Store
) -> None:
    key = new_project(collector, "generated")["project_key"]
    codes: dict[int, int] = {}
    with httpx.Client(base_url=collector.url, timeout=60) as client:

        @HOSTILE
        @given(batch=batches(), resend=st.booleans())
        def run(batch: tuple[bytes, list[str], list[str], bool], resend: bool) -> None:
            body, valid, hostile, too_deep = batch
            # Examples may repeat trace ids: make this example's own.
            salt = uuid.uuid4().hex[:8]
            for trace_id in valid + hostile:
                body = body.replace(trace_id.encode(), (trace_id + salt).encode())
            valid = [t + salt for t in valid]
            hostile = [t + salt for t in hostile]
            for attempt in range(2 if resend else 1):
                answer = client.post(
                    COLLECT,
                    content=body,
                    headers={"X-Project-Key": key, "Content-Type": "application/json"},
                )
                TRIED["cases"] += 1
                TRIED["5xx"] += answer.status_code >= 500
                assert answer.status_code < 500, answer.text[:500]
                envelope = assert_envelope(answer)
                codes[envelope["code"]] = codes.get(envelope["code"], 0) + 1
                data = envelope["data"] or {}
                if valid:
                    # valid neighbours are never refused with the batch
                    assert envelope["code"] == 0, envelope
                    stored_now = data["accepted"] + data["duplicates"]
                    assert stored_now >= len(valid), envelope
                    if attempt == 1:
                        assert data["accepted"] == 0, envelope
                else:
                    assert envelope["code"] in (0, 10001, 20004), envelope
                    if too_deep:
                        assert envelope["code"] == 10001, envelope
            ids = valid + hostile
            records = {
                d["trace_id"]: d
                for d in store.records.find({"project_key": key, "trace_id": {"$in": ids}})
            }
            trees = {
                d["trace_id"]
                for d in store.call_trees.find({"project_key": key, "trace_id": {"$in": ids}})
            }
            assert set(valid) <= set(records)
            if too_deep:
                assert records == {}
            with_tree = {t for t, d in records.items() if d.get("has_tree")}
            assert trees == with_tree, "a tree without its record, or a record without its tree"

        run()
    assert set(codes) - {0}, codes
    assert store.call_trees.count_documents({"project_key": key}) == store.records.count_documents(
        {"project_key": key, "has_tree": True}
    )
    lab = Lab(store)
    records = lab.records(key)
    assert records.height == store.records.count_documents({"project_key": key})
    for route in {r for r in records["route"].to_list() if r}:
        tree = lab.merged_tree(key, route)
        assert tree.root.count >= 1
    for trace_id in records["trace_id"].head(20).to_list():
        assert lab.record(trace_id).trace_id == trace_id
    assert collector.process is not None and collector.process.poll() is None


time_ranges = st.from_regex(re.compile(r"\A-?[0-9]{0,25}[mhdwsy]?\Z")) | st.text(max_size=8)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
)


def test_generated_query_parameters_are_answered_or_refused_with_10001(
    collector: CollectorProcess,
) -> None:
    key = new_project(collector, "queries")["project_key"]
    with httpx.Client(
        base_url=collector.url, timeout=60, headers=collector.admin_headers
    ) as client:

        @HOSTILE
        @given(
            time_range=st.none() | time_ranges,
            bucket=st.none() | time_ranges,
            until=st.none() | moments,
            since=st.none() | moments,
            page=st.none() | st.integers(-5, 2**70),
            size=st.none() | st.integers(-5, 2**70),
            which=st.sampled_from(["records", "trends"]),
        )
        def run(
            time_range: str | None,
            bucket: str | None,
            until: datetime | None,
            since: datetime | None,
            page: int | None,
            size: int | None,
            which: str,
        ) -> None:
            params: dict[str, Any] = {"project_key": key}
            for name, value in (
                ("time_range", time_range),
                ("bucket", bucket if which == "trends" else None),
                ("until", until.isoformat() if until else None),
                ("since", since.isoformat() if since and which == "records" else None),
                ("page", page if which == "records" else None),
                ("size", size if which == "records" else None),
            ):
                if value is not None:
                    params[name] = value
            path = (
                "/api/v1/performance/records"
                if which == "records"
                else f"/api/v1/performance/trends/{key}"
            )
            answer = client.get(path, params=params)
            TRIED["cases"] += 1
            TRIED["5xx"] += answer.status_code >= 500
            assert answer.status_code in (200, 400), answer.text[:500]
            assert assert_envelope(answer)["code"] in (0, 10001)

        run()
    print(f"\ngenerated hostile cases tried: {TRIED['cases']}, 5xx answers: {TRIED['5xx']}")
