"""Markup sent by a monitored app is shown as text on every dashboard page and report.

Records carrying an HTML/script payload in every field an app controls (path,
route, headers, query, user agent, function and file names, SQL text, tags,
version, commit) go through the real collector; the project is named with the
payload too. Every page, an analysis and a generated report are opened in
Chromium: the injected handlers never run (``window.__pwned`` stays
undefined), the payload is visible literally, and every response carries the
Content-Security-Policy without blocking the dashboard's own scripts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from panel_apps.security import CONTENT_SECURITY_POLICY
from panel_apps.state import PAGES
from pystrument_lab.store import Store
from tests.utils.browser import DashboardProcess, Page, chromium
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.e2e

pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")

MARK = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"
LITERAL = "<img src=x onerror=window.__pwned=1>"
ROUTE = "/r/" + MARK
PROJECT = "shop " + MARK


def hostile_record(version: str, index: int, when: datetime) -> dict[str, Any]:
    record = make_record(
        trace_id=f"hostile-{version.split('<')[0]}-{index}",
        path="/nope" + MARK,
        route=ROUTE,
        app_version=version,
        timestamp=when,
        duration=0.05 * (index + 1) * (2 if version != "1.0" else 1),
    )
    record["request_info"].update(
        headers={"x-h" + MARK: MARK, "accept": MARK},
        query_params={"q": MARK},
        user_agent=MARK,
        remote_ip="10.0.0.1",
    )
    record["response_info"]["content_type"] = MARK
    record["version_info"]["git_commit"] = MARK[:200]
    record["tags"] = {"tag" + MARK: MARK}
    record["environment"]["server_info"] = {"hostname": MARK}
    for node in record["function_calls"]:
        node["function_name"] = node["function_name"] + MARK
        node["file_path"] = "/srv/" + MARK + ".py"
    record["performance_metrics"]["database_metrics"] = {
        "query_count": 3,
        "query_time": 0.02,
        "slow_queries": [{"statement": "SELECT '" + MARK + "'", "duration": 0.3}],
        "statements": {
            "items": [
                {"statement": "SELECT " + MARK, "count": 4, "total_duration": 0.02,
                 "max_duration": 0.01, "call_site": {"function": "f" + MARK, "file": MARK, "line": 3}},
            ],
            "other_statements": 0, "other_count": 0, "other_duration": 0.0,
        },
    }  # fmt: skip
    record["performance_metrics"]["memory_usage"] = {
        "peak_memory": 1.0,
        "memory_delta": 0.5,
        "allocations": [
            {"function": "a" + MARK, "file": MARK, "line": 5, "size": 2048, "count": 2}
        ],
    }
    record["error"] = {
        "type": "E" + MARK,
        "message": "m" + MARK,
        "traceback": [{"function": "t" + MARK, "file": MARK, "line": 9, "is_application": True}],
        "frames_omitted": 0,
    }
    return record


@pytest.fixture(scope="module")
def seeded(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("hostile-home")
    database = "test_" + uuid.uuid4().hex[:12]
    store = Store(mongo_url, database=database)
    store.ensure_indexes()
    collector = CollectorProcess(mongo_url, database, home)
    collector.start()
    try:
        project = collector.create_project(PROJECT, framework="flask")
        key = project["project_key"]
        now = datetime.now(timezone.utc)
        records = []
        for version_index, version in enumerate(("1.0", "2.0" + MARK)):
            when = now - timedelta(minutes=30 - version_index * 10)
            records += [hostile_record(version, i, when) for i in range(6)]
            metric = make_metric([0.05, 0.1, 0.2] * 4, route=ROUTE, app_version=version, start=when)
            answer = httpx.post(
                collector.url + "/api/v1/performance/metrics",
                json={"metrics": [metric]},
                headers={"X-Project-Key": key},
                timeout=30,
            )
            assert answer.json()["code"] == 0, answer.text
        answer = httpx.post(
            collector.url + "/api/v1/performance/collect",
            json={"records": records},
            headers={"X-Project-Key": key},
            timeout=30,
        )
        assert answer.json()["data"]["accepted"] == len(records), answer.text

        from pystrument_lab.analysis import analyze
        from pystrument_lab.reports import run_report

        analyze((key, ROUTE), store=store, service="rules")
        report = run_report(key, "summary", "-1d", "now", store=store, home=home)
        assert report["status"] == "completed", report
        env = {**collector.env, "PYSTRUMENT_HOME": str(home)}
        yield {"store": store, "key": key, "env": env, "home": home, "report": report}
    finally:
        collector.stop()
        store.client.drop_database(database)
        store.close()


@pytest.fixture(scope="module")
def dashboard(seeded: dict[str, Any]) -> Iterator[DashboardProcess]:
    process = DashboardProcess(seeded["env"], seeded["home"] / "dashboard.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def pwned(page: Any) -> Any:
    """The marker the payload sets if any of it ran, in the page or any of its frames."""
    return [frame.evaluate("() => window.__pwned") for frame in page.frames]


def test_no_page_runs_the_payload_and_each_shows_it_as_text(
    browser: Any, dashboard: DashboardProcess, seeded: dict[str, Any]
) -> None:
    from urllib.parse import quote

    trace = seeded["store"].records.find_one({"project_key": seeded["key"]})["trace_id"]
    query = f"&project={quote(PROJECT)}&route={quote(ROUTE)}&trace={trace}&range=24h"
    visible = {
        "overview": "shop " + LITERAL,
        "projects": "shop " + LITERAL,
        "endpoints": ROUTE[:20],
        "records": "Records of shop " + LITERAL,
        "trace": "/nope" + LITERAL,
        "versions": "Versions of shop " + LITERAL,
        "analysis": "Analysis of shop " + LITERAL,
        "reports": "Reports",
    }
    opened = Page(browser, dashboard.url)
    try:
        for slug in PAGES:
            opened.open(f"?page={slug}{query}")
            try:
                opened.text(visible[slug]).wait_for()
                opened.page.wait_for_timeout(1000)
            finally:
                opened.shot(f"hostile-{slug}")
            assert pwned(opened.page) == [None] * len(opened.page.frames), slug
            csp = [e for e in opened.errors if "Content Security Policy" in e]
            assert csp == [], f"{slug}: {csp}"
        # The payload in the trace page's own panes (header, pairs, table) is text.
        opened.open(f"?page=trace{query}")
        opened.text("Call tree").wait_for()
        assert opened.page.get_by_text(LITERAL, exact=False).count() >= 3
        # ... and in the exception, SQL and allocation panels.
        panels = opened.page.locator(".diag")
        assert opened.page.locator(".exception-type").inner_text() == "E" + MARK
        assert opened.page.locator(".exception-message").inner_text() == "m" + MARK
        assert opened.page.locator(".traceback code").inner_text() == "t" + MARK
        assert opened.page.locator(".statement").inner_text() == "SELECT " + MARK
        assert ("f" + MARK) in opened.page.locator(".sql .site").inner_text()
        assert ("a" + MARK) in opened.page.locator(".allocations .site").inner_text()
        assert panels.locator("img, script").count() == 0
        assert opened.page.locator("img[src=x]").count() == 0
        assert pwned(opened.page) == [None] * len(opened.page.frames)
    finally:
        opened.page.close()


def test_the_report_and_its_listing_show_the_payload_as_text(
    browser: Any, dashboard: DashboardProcess, seeded: dict[str, Any]
) -> None:
    report_id = seeded["report"]["id"]
    opened = Page(browser, dashboard.url)
    try:
        opened.open(f"report?id={report_id}")
        frame = opened.page.frame_locator("iframe").first
        heading = frame.get_by_text("performance summary", exact=False).first
        try:
            heading.wait_for()
            opened.page.wait_for_timeout(1000)
        finally:
            opened.shot("hostile-report")
        assert heading.inner_text().startswith("shop " + MARK)
        injected = frame.locator("img[src=x]")
        where = (
            injected.first.evaluate("e => e.parentElement.outerHTML") if injected.count() else ""
        )
        assert injected.count() == 0, where[:2000]
        assert pwned(opened.page) == [None] * len(opened.page.frames)
    finally:
        opened.page.close()


def test_every_dashboard_response_carries_the_content_security_policy(
    dashboard: DashboardProcess, seeded: dict[str, Any]
) -> None:
    for path in ("", "?page=trace", f"report?id={seeded['report']['id']}", "pyinstrument?trace=x"):
        answer = httpx.get(dashboard.url + path, timeout=30)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
