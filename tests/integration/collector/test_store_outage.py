from __future__ import annotations

import time
import uuid

import httpx
import pytest

from pystrument_lab.embedded import EmbeddedServer
from tests.utils.factories import make_record
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.slow


def _wait_code(url: str, code: int, timeout: float = 30.0, **kwargs: object) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            body = httpx.request(url=url, timeout=10, **kwargs).json()  # type: ignore[arg-type]
        except httpx.HTTPError:
            body = {}
        if body.get("code") == code:
            return body
        time.sleep(0.3)
    raise AssertionError(f"expected code {code}, last answer {body}")


def test_store_killed_and_restarted(private_server: EmbeddedServer, tmp_path) -> None:
    url = private_server.ensure_running()
    collector = CollectorProcess(url, "outage_" + uuid.uuid4().hex[:8], tmp_path)
    collector.start()
    try:
        key = collector.create_project("outage")["project_key"]
        ingest = {
            "method": "POST",
            "url": collector.url + "/api/v1/performance/collect",
            "headers": {"X-Project-Key": key},
        }
        assert httpx.request(json=make_record(trace_id="before"), **ingest).json()["code"] == 0  # type: ignore[arg-type]

        assert private_server.stop()
        down = _wait_code(collector.url + "/health", 10005, method="GET")
        assert down["data"] == {"status": "degraded", "store": "down"}
        response = httpx.request(json=make_record(trace_id="during"), **ingest)  # type: ignore[arg-type]
        assert (response.status_code, response.json()["code"]) == (503, 10005)
        listing = httpx.get(collector.url + "/api/v1/projects", headers=collector.admin_headers)
        assert (listing.status_code, listing.json()["code"]) == (503, 10005)
        assert "Traceback" not in listing.text

        private_server.start()
        _wait_code(collector.url + "/health", 0, method="GET")
        after = _wait_code(
            collector.url + "/api/v1/performance/collect",
            0,
            method="POST",
            json=make_record(trace_id="after"),
            headers={"X-Project-Key": key},
        )
        assert after["data"]["accepted"] == 1
        records = httpx.get(
            collector.url + "/api/v1/performance/records",
            params={"project_key": key},
            headers=collector.admin_headers,
        ).json()["data"]
        assert sorted(item["trace_id"] for item in records["items"]) == ["after", "before"]
    finally:
        collector.stop()
