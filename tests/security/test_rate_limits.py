"""The per-project-key rate limit covers every SDK route, shares one budget, and isolates projects.

(Ingest alone is covered in tests/integration/collector; this adds the metrics
and remote-config routes and the shared budget.)
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.utils.audit import assert_envelope, new_project, running_collector
from tests.utils.factories import make_metric, make_record

LIMIT = 6


def sdk_call(collector: Any, key: str, route: str, body: Any = "valid") -> httpx.Response:
    headers = {"X-Project-Key": key}
    if route == "config":
        return httpx.get(collector.url + "/api/v1/sdk/config", headers=headers)
    if route == "collect":
        payload = make_record() if body == "valid" else body
        return httpx.post(
            collector.url + "/api/v1/performance/collect", json=payload, headers=headers
        )
    payload = (
        {"batch_id": uuid.uuid4().hex, "metrics": [make_metric([0.1])]} if body == "valid" else body
    )
    return httpx.post(collector.url + "/api/v1/performance/metrics", json=payload, headers=headers)


def test_metrics_and_config_share_the_ingest_budget(mongo_url: str, tmp_path: Path) -> None:
    with running_collector(
        mongo_url, tmp_path, PYSTRUMENT_RATE_LIMIT_PER_MINUTE=str(LIMIT)
    ) as collector:
        limited = new_project(collector, "limited")["project_key"]
        other = new_project(collector, "other")["project_key"]
        routes = ["collect", "metrics", "config"] * (LIMIT // 3)
        codes = [assert_envelope(sdk_call(collector, limited, route))["code"] for route in routes]
        assert codes == [0] * LIMIT
        for route in ("collect", "metrics", "config"):
            response = sdk_call(collector, limited, route)
            body = assert_envelope(response)
            assert (response.status_code, body["code"]) == (429, 10004), (route, body)
            assert body["data"]["retry_after"] > 0
            assert limited not in response.text
        # an invalid body from a limited key is refused for the rate, before any validation
        invalid = sdk_call(collector, limited, "metrics", {"metrics": "nope"})
        assert (invalid.status_code, assert_envelope(invalid)["code"]) == (429, 10004)
        # another project's budget is untouched, and management routes are not limited
        for route in ("collect", "metrics", "config"):
            assert assert_envelope(sdk_call(collector, other, route))["code"] == 0
        for _ in range(LIMIT + 2):
            listing = httpx.get(collector.url + "/api/v1/projects", headers=collector.admin_headers)
            assert assert_envelope(listing)["code"] == 0
