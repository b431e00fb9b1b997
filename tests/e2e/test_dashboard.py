"""The dashboard in headless Chromium over the demo shop's data.

One store database, collector and dashboard for the module (seeding the demo
takes a while); each test opens its own browser page. Screenshots go to
``test-artifacts/`` (not committed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from panel_apps.state import PAGES
from pystrument_lab.store import Store
from tests.utils.browser import DashboardProcess, Page, chromium, figure_glyphs
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.e2e

pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")

PROJECT = "demo-shop"
SEARCH = "/api/search"


@pytest.fixture(scope="module")
def seeded(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from pystrument_lab.demo import run_demo

    home = tmp_path_factory.mktemp("dashboard-home")
    database = "test_" + uuid.uuid4().hex[:12]
    store = Store(mongo_url, database=database)
    store.ensure_indexes()
    collector = CollectorProcess(mongo_url, database, home)
    collector.start()
    try:
        demo = run_demo(collector.url, requests_per_version=40, store=store)
        env = {**collector.env, "PYSTRUMENT_HOME": str(home)}
        yield {"store": store, "demo": demo, "env": env, "home": home, "collector": collector}
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


@pytest.fixture
def page(browser: Any, dashboard: DashboardProcess) -> Iterator[Page]:
    opened = Page(browser, dashboard.url)
    yield opened
    opened.page.close()


def test_every_page_loads_without_console_errors(page: Page, seeded: dict[str, Any]) -> None:
    trace = seeded["store"].records.find_one({"route": SEARCH})["trace_id"]
    expected = {
        "overview": PROJECT, "projects": "New project", "endpoints": SEARCH, "records": "sampled requests",
        "trace": "Call tree", "versions": "regressed", "analysis": "History", "reports": "Reports",
    }  # fmt: skip
    for slug in PAGES:
        page.open(f"?page={slug}&project={PROJECT}&trace={trace}&range=24h")
        page.text(expected[slug]).wait_for()
        page.page.wait_for_timeout(500)
        page.shot(slug)
        assert page.errors == [], f"{slug}: {page.errors}"


def test_creating_a_project_shows_its_key(page: Page, seeded: dict[str, Any]) -> None:
    browser_page = page.open("?page=projects")
    browser_page.get_by_placeholder("shop-api").fill("checkout-service")
    browser_page.get_by_role("button", name="Create project").click()
    page.text("Created").wait_for()
    stored = seeded["store"].project_by_name("checkout-service")
    assert stored is not None
    key_input = browser_page.locator(".project-key input").first
    assert key_input.input_value() == stored["project_key"]
    assert (
        browser_page.get_by_text(
            "from performance_monitor.flask import PerformanceMiddleware"
        ).count()
        >= 1
    )
    page.shot("project-created")
    assert page.errors == []


def test_a_taken_name_replaces_the_earlier_created_message(
    page: Page, seeded: dict[str, Any]
) -> None:
    browser_page = page.open("?page=projects")
    name_box = browser_page.get_by_placeholder("shop-api")
    name_box.fill("billing-service")
    browser_page.get_by_role("button", name="Create project").click()
    page.text("Created").wait_for()
    name_box.fill("billing-service")
    browser_page.get_by_role("button", name="Create project").click()
    page.text("a project named 'billing-service' already exists").wait_for()
    browser_page.wait_for_function(
        "() => !Array.from(document.querySelectorAll('.alert'))"
        ".some(e => e.offsetParent !== null && e.innerText.includes('Created'))"
    )
    form = browser_page.locator(".card", has_text="New project").last
    assert form.locator(".project-key input").count() == 0  # the editor below keeps its own
    assert form.get_by_text("already exists").count() == 0  # the page's one message says it
    page.shot("project-name-taken")
    assert page.errors == []


def test_overview_to_endpoint_to_record_to_trace(page: Page, seeded: dict[str, Any]) -> None:
    browser_page = page.open("?range=24h")
    card = browser_page.locator(".card", has_text=PROJECT).first
    card.get_by_role("button", name="Endpoints").click()
    browser_page.locator(".tabulator-cell", has_text=SEARCH).first.click()
    page.text(f"Records of {SEARCH}").wait_for()
    assert (
        f"route={SEARCH.replace('/', '%2F')}" in browser_page.url
        or f"route={SEARCH}" in browser_page.url
    )
    browser_page.get_by_role("button", name=f"Records of {SEARCH}").click()
    page.text("Click a row to open its trace").wait_for()
    first_trace = browser_page.locator(
        ".tabulator-row .tabulator-cell[tabulator-field='trace']"
    ).first
    shortened = first_trace.inner_text().strip()
    assert len(shortened) == 13 and shortened.endswith("…")  # a 32-character id, shortened
    first_trace.click()
    page.text("Open in pyinstrument view").wait_for()
    browser_page.wait_for_function("() => window.Bokeh && window.Bokeh.documents.length > 0")
    browser_page.wait_for_timeout(1000)
    # The row opens its request by record key: <trace id>-<span id>.
    key = browser_page.url.split("trace=")[1].split("&")[0]
    trace, span = key.split("-")
    assert len(trace) == 32 and len(span) == 16 and trace.startswith(shortened[:-1])
    stored = seeded["store"].call_trees.find_one({"record_key": key})
    # The flame graph draws the application root's subtree: every frame below it.
    below = {stored["application_root"]}
    for node in stored["nodes"]:  # pre-order: a parent comes before its children
        if node["parent_call_id"] in below:
            below.add(node["call_id"])
    nodes = [node["function_name"] for node in stored["nodes"] if node["call_id"] in below]
    drawn = figure_glyphs(browser_page, "Flame graph")
    assert drawn is not None and sorted(drawn) == sorted(nodes)
    # The tree table opens on the demo's own code, not on the server's and FastAPI's frames.
    first_row = browser_page.locator(
        ".call-tree .tabulator-row .tabulator-cell[tabulator-field='function']"
    ).first.inner_text()
    root = next(n for n in stored["nodes"] if n["call_id"] == stored["application_root"])
    assert first_row.strip() == root["function_name"] and root["is_application"]
    assert stored["nodes"][0]["function_name"] not in first_row
    assert browser_page.locator("canvas").count() > 0
    page.shot("navigation-trace")
    assert page.errors == []


def test_pyinstrument_view_shows_the_stored_session(page: Page, seeded: dict[str, Any]) -> None:
    trace = seeded["store"].call_trees.find_one({"session": {"$ne": None}, "route": SEARCH})[
        "trace_id"
    ]
    browser_page = page.open(f"pyinstrument?trace={trace}")
    browser_page.locator("iframe").first.wait_for()
    frame = browser_page.frame_locator("iframe").first
    frame.get_by_text("Call stack").first.wait_for()  # pyinstrument's own renderer ran
    frame.get_by_text("PerformanceMiddleware.__call__").first.wait_for()
    page.shot("pyinstrument-view")
    # pyinstrument's page asks for a web font from fonts.googleapis.com; the dashboard's
    # Content-Security-Policy refuses it, so nothing leaves the machine: that refusal is
    # the one console message expected.
    assert [e for e in page.errors if "https://fonts.googleapis.com/" not in e] == []


def test_versions_page_shows_the_regression(page: Page) -> None:
    browser_page = page.open(f"?page=versions&project={PROJECT}")
    page.text("regressed from 1.0 to 1.1").wait_for()
    verdict = page.text("regressed from 1.0 to 1.1").locator("xpath=..").inner_text()
    assert SEARCH in verdict
    browser_page.wait_for_timeout(1000)
    drawn = figure_glyphs(browser_page, f"{SEARCH}, 1.1 (coloured by change from 1.0)")
    assert drawn and "rank_search_results" in drawn
    page.shot("versions-regression")
    assert page.errors == []


def test_analysis_started_from_the_ui_completes(page: Page, seeded: dict[str, Any]) -> None:
    store = seeded["store"]
    trace = store.records.find_one({"route": SEARCH, "app_version": "1.1"})["trace_id"]
    browser_page = page.open(f"?page=trace&project={PROJECT}&trace={trace}")
    browser_page.get_by_role("button", name="Analyse this request").click()
    browser_page.locator(".analysis-status", has_text="completed").wait_for(timeout=60_000)
    analysis = store.analyses.find_one({"trace_id": trace, "status": "completed"})
    assert analysis is not None
    bottleneck = analysis["analysis_results"]["bottleneck_analysis"][0]["function"]
    assert browser_page.get_by_text(bottleneck).count() >= 1
    page.shot("analysis-completed")
    assert page.errors == []


def test_login_is_required_off_loopback(seeded: dict[str, Any]) -> None:
    token = seeded["env"]["PYSTRUMENT_ADMIN_TOKEN"]
    process = DashboardProcess(
        seeded["env"], seeded["home"] / "dashboard-open.log", address="0.0.0.0"
    )
    try:
        anonymous = httpx.get(process.url, timeout=10, follow_redirects=False)
        assert anonymous.status_code in (302, 401, 403)
        assert "login" in anonymous.headers.get("location", "login")
        with httpx.Client(timeout=10) as client:
            wrong = client.post(
                process.url + "login",
                data={"username": "admin", "password": "wrong"},
                follow_redirects=False,
            )
            assert "user" not in client.cookies
            assert wrong.status_code != 302 or "error" in wrong.headers.get("location", "")
            client.post(
                process.url + "login",
                data={"username": "admin", "password": token},
                follow_redirects=False,
            )
            assert client.get(process.url, follow_redirects=False).status_code == 200
    finally:
        process.stop()


def column_titles(browser_page: Any) -> list[tuple[str, int, int]]:
    """Each visible table header: its text, and how far its text reaches past its box (px).

    The text's own extent (a DOM Range over it) against the title's box: a header cut
    with an ellipsis, or clipped, reaches past it; a wrapped one does not.
    """
    titles = browser_page.locator(".tabulator-col-title").evaluate_all(
        """els => els.filter(e => e.offsetParent !== null && e.innerText.trim()).map(e => {
            const range = document.createRange();
            range.selectNodeContents(e);
            const text = range.getBoundingClientRect(), box = e.getBoundingClientRect();
            return [e.innerText, Math.round(text.right - box.right),
                    Math.round(text.bottom - box.bottom)];
        })"""
    )
    return [(text, right, bottom) for text, right, bottom in titles]


def cells(browser_page: Any, field: str) -> list[str]:
    return browser_page.locator(
        f".tabulator-row .tabulator-cell[tabulator-field='{field}']"
    ).all_inner_texts()


def test_tables_show_units_dates_and_whole_headers_at_1400px(
    page: Page, seeded: dict[str, Any]
) -> None:
    import re

    from pystrument_lab.reports import run_report

    run_report(PROJECT, "summary", "-1d", "now", store=seeded["store"], home=seeded["home"])
    checks = {
        "endpoints": ["p95 (ms)", "throughput (req/min)", "error rate", "requests"],
        "records": ["time (UTC)", "duration (ms)", "status", "SQL queries", "version", "trace id"],
        "versions": ["p95 A (ms)", "p95 B (ms)", "p95 change", "requests A", "error rate B"],
        "reports": ["created (UTC)", "run time (s)", "template", "status"],
    }
    for slug, expected in checks.items():
        browser_page = page.open(f"?page={slug}&project={PROJECT}&range=24h")
        browser_page.locator(".tabulator-row").first.wait_for()
        browser_page.wait_for_timeout(500)
        page.shot(f"units-{slug}")
        titles = column_titles(browser_page)
        texts = [text.replace("\n", " ") for text, _, _ in titles]
        for title in expected:
            assert title in texts, (slug, texts)
        cut = [(text, right, bottom) for text, right, bottom in titles if right > 1 or bottom > 1]
        assert cut == [], f"{slug}: headers cut: {cut}"
        # Every column ends inside the table's visible width (no horizontal scrolling).
        overflow = browser_page.locator(".tabulator-tableholder").first.evaluate(
            """holder => {
                const edge = holder.getBoundingClientRect().right;
                const cols = [...holder.closest('.tabulator').querySelectorAll(
                    '.tabulator-header .tabulator-col[tabulator-field]')]
                    .filter(c => c.offsetWidth > 0).map(c => c.getBoundingClientRect().right);
                return Math.round(Math.max(...cols) - edge);
            }"""
        )
        assert overflow <= 0, f"{slug}: the columns end {overflow} px past the table's edge"
        if slug == "endpoints":
            rates = cells(browser_page, "error_rate")
            assert rates and all(re.fullmatch(r"\d+\.\d\d%", rate) for rate in rates), rates
        if slug == "records":
            whole = browser_page.locator(
                ".tabulator-row .tabulator-cell[tabulator-field='timestamp'],"
                ".tabulator-row .tabulator-cell[tabulator-field='trace']"
            ).evaluate_all("els => els.filter(e => e.scrollWidth > e.clientWidth).length")
            assert whole == 0, "dates or trace ids are cut"
            times = cells(browser_page, "timestamp")
            assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times)
        if slug == "reports":
            created = cells(browser_page, "created_at")[0]
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", created), created
    assert page.errors == []
