"""Records keyed by a W3C trace id, with the caller's span id: ingest, validation and lookup."""

from __future__ import annotations

import httpx
import pytest

from pystrument_lab.loaders import Lab
from pystrument_lab.store import Store
from tests.utils.factories import make_record
from tests.utils.services import CollectorProcess

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _post(collector: CollectorProcess, key: str, body: object) -> httpx.Response:
    return httpx.post(
        collector.url + "/api/v1/performance/collect", json=body, headers={"X-Project-Key": key}
    )


def test_trace_id_and_parent_span_are_stored_and_found(
    collector: CollectorProcess, project: dict, store: Store
) -> None:
    key = project["project_key"]
    record = make_record(trace_id=TRACE)
    record["parent_span_id"] = "b7ad6b7169203331"
    resent = make_record(trace_id=TRACE)  # the same trace again, in this project
    first = _post(collector, key, record).json()["data"]
    second = _post(collector, key, resent).json()["data"]
    assert (first["accepted"], second["duplicates"]) == (1, 1)
    found = Lab(store).record(TRACE, project["name"])
    assert found.data["parent_span_id"] == "b7ad6b7169203331"
    answer = httpx.get(
        f"{collector.url}/api/v1/performance/records/{key}/{TRACE}",
        headers=collector.admin_headers,
    )
    assert answer.json()["data"]["parent_span_id"] == "b7ad6b7169203331"


@pytest.mark.parametrize(
    "bad", ["B7AD6B7169203331", "b7ad6b716920333", "b7ad6b71692033311", "<script>", 7]
)
def test_parent_span_must_be_16_lowercase_hex(
    collector: CollectorProcess, project: dict, store: Store, bad: object
) -> None:
    record = make_record(trace_id=TRACE)
    record["parent_span_id"] = bad
    answer = _post(collector, project["project_key"], {"records": [record]})
    assert answer.status_code == 422
    assert answer.json()["msg"].startswith("parent_span_id")
    assert store.records.count_documents({"project_key": project["project_key"]}) == 0
