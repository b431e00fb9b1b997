"""The trace page in headless Chromium over records planted through the real collector.

One failed request carries an exception, its SQL statements (one run in a
loop) and its allocation sites; its call tree starts with server and
framework frames above the application's view. The page must show the
planted values, open the tree on the application's code with library frames
folded, and show every frame after one click.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pystrument_lab.store import Store
from tests.utils.browser import DashboardProcess, Page, chromium
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess
from tests.utils.tree_specs import Spec, nodes_from_spec

pytestmark = pytest.mark.e2e

pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")

PROJECT = "bookshop"
TRACE = "7f" * 16
#: Two requests of one distributed trace (a page calling the cart API twice).
SHARED = "5e" * 16
SPANS = ("0a0a0a0a0a0a0a01", "0b0b0b0b0b0b0b02")
#: uvicorn/starlette frames above the view, a library call below it, and a
#: template callback (application code again) under a library frame.
TREE: Spec = (
    "uvicorn.run_asgi", 0.001, [
        ("starlette.__call__", 0.001, [
            ("starlette.wrapped_app", 0.001, [
                ("starlette.handle", 0.002, [
                    ("shop.list_orders", 0.010, [
                        ("shop.load_order_items", 0.004, [
                            ("sqlalchemy.execute", 0.002, [
                                ("sqlalchemy._execute_context", 0.030, []),
                            ]),
                        ]),
                        ("jinja2.render", 0.003, [
                            ("jinja2.root_render_func", 0.001, [
                                ("shop.format_price", 0.006, []),
                            ]),
                        ]),
                    ]),
                ]),
            ]),
        ]),
    ],
)  # fmt: skip
ERROR = {
    "type": "shop.errors.StockMismatch",
    "message": "order 41 lists 3 items but the ledger has 2",
    "traceback": [
        {"function": "run_asgi", "file": "/venv/site-packages/uvicorn/h11.py", "line": 403,
         "is_application": False},
        {"function": "list_orders", "file": "/srv/shop/views.py", "line": 58,
         "is_application": True},
        {"function": "check_stock", "file": "/srv/shop/stock.py", "line": 17,
         "is_application": True},
        {"function": "get", "file": "/venv/site-packages/sqlalchemy/orm/session.py",
         "line": 3001, "is_application": False},
    ],
    "frames_omitted": 4,
}  # fmt: skip
LOOPED = "SELECT id, sku, qty FROM order_items WHERE order_id = ?"
ONCE = "SELECT id, customer FROM orders WHERE status IN (?) LIMIT ?"
DATABASE = {
    "query_count": 13,
    "query_time": 0.032,
    "statements": {
        "items": [
            {"statement": LOOPED, "count": 12, "total_duration": 0.03, "max_duration": 0.004,
             "call_site": {"function": "load_order_items", "file": "/srv/shop/views.py",
                           "line": 71}},
            {"statement": ONCE, "count": 1, "total_duration": 0.002, "max_duration": 0.002,
             "call_site": {"function": "list_orders", "file": "/srv/shop/views.py", "line": 60}},
        ],
        "other_statements": 0, "other_count": 0, "other_duration": 0.0,
    },
}  # fmt: skip
MEMORY = {
    "peak_memory": 6.5,
    "memory_delta": 3.0,
    "allocations": [
        {"function": "format_price", "file": "/srv/shop/money.py", "line": 9,
         "size": 3 * 1024 * 1024, "count": 12000},
    ],
}  # fmt: skip


def planted_record() -> dict[str, Any]:
    nodes = nodes_from_spec(TREE, app_prefix="shop")
    root = next(n["call_id"] for n in nodes if n["function_name"] == "shop.list_orders")
    record = make_record(
        trace_id=TRACE,
        path="/orders",
        route="/orders",
        status=500,
        duration=nodes[0]["duration"],
        timestamp=datetime.now(timezone.utc) - timedelta(minutes=3),
        nodes=nodes,
        error=ERROR,
        application_root=root,
    )
    record["performance_metrics"].update(database_metrics=DATABASE, memory_usage=MEMORY)
    return record


#: Two more requests of another route that raised the same exception; one message is hostile.
SAME = [("4e" * 16, 1, "order 7 lists 1 item but the ledger has 0"),
        ("6e" * 16, 2, "<img src=x onerror=\"window.__pwned=1\"> & <b>bold</b>")]  # fmt: skip


def same_exception_records() -> list[dict[str, Any]]:
    return [
        make_record(
            trace_id=trace, path=f"/orders/{minutes}/ship", route="/orders/{id}/ship", status=500,
            duration=0.02 * minutes, timestamp=datetime.now(timezone.utc) - timedelta(minutes=minutes),
            error={**ERROR, "message": message},
        )
        for trace, minutes, message in SAME
    ]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("trace-home")
    database = "test_" + uuid.uuid4().hex[:12]
    store = Store(mongo_url, database=database)
    store.ensure_indexes()
    collector = CollectorProcess(mongo_url, database, home)
    collector.start()
    try:
        key = collector.create_project(PROJECT, framework="fastapi")["project_key"]
        twins = [
            make_record(
                trace_id=SHARED,
                span_id=span,
                parent_span_id="c0ffee00c0ffee00",
                path=f"/cart/{n}",
                route="/cart/{n}",
                timestamp=datetime.now(timezone.utc) - timedelta(minutes=2 - n),
            )
            for n, span in enumerate(SPANS, start=1)
        ]
        answer = httpx.post(
            collector.url + "/api/v1/performance/collect",
            json={"records": [planted_record(), *same_exception_records(), *twins]},
            headers={"X-Project-Key": key},
            timeout=30,
        )
        assert answer.json()["data"]["accepted"] == 5, answer.text
        metric = make_metric([0.06, 0.05, 0.07], route="/orders", status_class="5xx", errors=3)
        metric["exceptions"] = {ERROR["type"]: 3}
        earlier = make_metric(
            [0.04], route="/orders", status_class="5xx", errors=1,
            start=datetime.now(timezone.utc) - timedelta(minutes=40),
        )  # fmt: skip
        earlier["exceptions"] = {"KeyError": 1}
        answer = httpx.post(
            collector.url + "/api/v1/performance/metrics",
            json={"batch_id": uuid.uuid4().hex, "metrics": [metric, earlier]},
            headers={"X-Project-Key": key},
            timeout=30,
        )
        assert answer.json()["code"] == 0, answer.text
        yield {"store": store, "env": {**collector.env, "PYSTRUMENT_HOME": str(home)}, "home": home}
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


def open_trace(page: Page) -> Any:
    browser_page = page.open(f"?page=trace&project={PROJECT}&trace={TRACE}")
    page.text("Call tree").wait_for()
    return browser_page


def test_the_exception_panel_shows_the_planted_exception(page: Page) -> None:
    browser_page = open_trace(page)
    browser_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    browser_page.get_by_role("button", name="Copy trace id").click()
    browser_page.wait_for_function(
        f"async () => (await navigator.clipboard.readText()) === '{TRACE}'"
    )
    panel = browser_page.locator(".diag.exception")
    assert panel.locator(".exception-type").inner_text() == ERROR["type"]
    assert panel.locator(".exception-message").inner_text() == ERROR["message"]
    frames = panel.locator(".traceback li")
    assert frames.count() == 4
    highlighted = panel.locator(".traceback li.application code").all_inner_texts()
    assert highlighted == ["list_orders", "check_stock"]
    assert "/srv/shop/stock.py:17" in panel.locator(".traceback li.application").nth(1).inner_text()
    assert "4 outer frames not sent" in panel.inner_text()
    # highlighted means drawn differently, not only classed
    colours = [frames.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(4)]
    assert colours[1] == colours[2] != colours[0] == colours[3]
    page.shot("trace-exception")
    assert page.errors == []


def test_other_requests_with_the_same_exception_are_listed_and_linked(page: Page) -> None:
    browser_page = open_trace(page)
    panel = browser_page.locator(".diag.same-exception")
    assert "2 other sampled requests raised shop.errors.StockMismatch; the newest 2:" in (
        panel.inner_text()
    )
    rows = panel.locator("tbody tr")
    assert rows.count() == 2
    newest, older = rows.nth(0), rows.nth(1)
    assert "GET /orders/1/ship" in newest.inner_text()
    assert newest.locator(".message").inner_text() == SAME[0][2]
    assert "20 ms" in newest.inner_text() and "500" in newest.inner_text()
    # the hostile message is text: no element made of it, no script run
    assert older.locator(".message").inner_text() == SAME[1][2]
    assert older.locator(".message img, .message b").count() == 0
    assert browser_page.evaluate("() => window.__pwned === undefined")
    link = older.locator("a.trace-link")
    assert link.inner_text() == SAME[1][0][:12] + "…"
    assert link.get_attribute("href") == f"?page=trace&project={PROJECT}&trace={SAME[1][0]}"
    panel.scroll_into_view_if_needed()
    page.shot("trace-same-exception")
    link.click()
    browser_page.wait_for_function(f"() => window.location.search.includes('trace={SAME[1][0]}')")
    page.text("/orders/2/ship").wait_for()
    assert browser_page.locator(".diag.exception .exception-message").inner_text() == SAME[1][2]
    # from there, the first request is one of the others
    other_links = browser_page.locator(".diag.same-exception a.trace-link").all_inner_texts()
    assert other_links == [SAME[0][0][:12] + "…", TRACE[:12] + "…"]
    assert page.errors == []


def test_the_sql_panel_lists_statements_and_flags_the_repeated_one(page: Page) -> None:
    browser_page = open_trace(page)
    panel = browser_page.locator(".diag.sql")
    rows = panel.locator("tbody tr")
    assert rows.count() == 2
    looped, once = rows.nth(0), rows.nth(1)
    assert looped.locator(".statement").inner_text() == LOOPED
    assert looped.locator(".count").inner_text().split()[0] == "12"
    assert looped.locator(".badge-repeated").inner_text() == "repeated ×12"
    assert "30 ms" in looped.inner_text()  # total time
    assert "load_order_items" in looped.locator(".site").inner_text()
    assert "/srv/shop/views.py:71" in looped.locator(".site").inner_text()
    assert once.locator(".statement").inner_text() == ONCE
    assert once.locator(".badge-repeated").count() == 0
    assert "2 distinct statements, 13 executions, 32 ms in total" in panel.inner_text()
    allocations = browser_page.locator(".diag.allocations tbody tr")
    assert allocations.count() == 1
    assert "format_price" in allocations.inner_text()
    assert "/srv/shop/money.py:9" in allocations.inner_text()
    assert "3 MiB" in allocations.inner_text()
    assert "12,000" in allocations.inner_text()
    browser_page.locator(".diag.allocations").scroll_into_view_if_needed()
    page.shot("trace-sql")
    assert page.errors == []


def tree_functions(browser_page: Any) -> list[str]:
    cells = browser_page.locator(
        ".call-tree .tabulator-row .tabulator-cell[tabulator-field='function']"
    )
    return [text.strip("\u2003 ") for text in cells.all_inner_texts()]


def test_the_tree_opens_on_application_code_and_one_switch_shows_every_frame(
    page: Page, seeded: dict[str, Any]
) -> None:
    browser_page = open_trace(page)
    stored = {
        node["function_name"]: node
        for node in seeded["store"].call_trees.find_one({"trace_id": TRACE})["nodes"]
    }
    shown = tree_functions(browser_page)
    assert shown[0] == "shop.list_orders" and stored[shown[0]]["is_application"]
    # the view the application called into stays, its internals fold into it
    assert shown == [
        "shop.list_orders", "shop.load_order_items", "sqlalchemy.execute", "jinja2.render",
        "shop.format_price",
    ]  # fmt: skip
    note = page.text("the application's outermost frame").inner_text()
    assert "4 server and framework frames above it" in note
    assert "2 library frames inside calls are folded" in note
    browser_page.locator(".call-tree").scroll_into_view_if_needed()
    page.shot("trace-tree-focused")
    search = browser_page.locator(".call-tree .tabulator-header-filter input").first
    search.press_sequentially("ORDER")  # Tabulator filters on key presses
    browser_page.locator(
        ".call-tree .tabulator-cell[tabulator-field='function']", has_text="jinja2.render"
    ).wait_for(state="detached")
    assert tree_functions(browser_page) == ["shop.list_orders", "shop.load_order_items"]
    search.fill("")
    search.press("Backspace")
    browser_page.locator(
        ".call-tree .tabulator-cell[tabulator-field='function']", has_text="jinja2.render"
    ).wait_for()
    browser_page.locator(".show-all-frames input").check()
    browser_page.locator(
        ".call-tree .tabulator-cell[tabulator-field='function']", has_text="uvicorn.run_asgi"
    ).wait_for()
    every = tree_functions(browser_page)
    assert every[:5] == [
        "uvicorn.run_asgi", "starlette.__call__", "starlette.wrapped_app", "starlette.handle",
        "shop.list_orders",
    ]  # fmt: skip
    assert len(every) == len(stored)
    browser_page.locator(".call-tree").scroll_into_view_if_needed()
    page.shot("trace-tree-all")
    assert page.errors == []


def test_without_a_range_in_the_url_the_range_fits_the_data_and_goes_into_the_url(
    page: Page,
) -> None:
    browser_page = page.open(f"?page=records&project={PROJECT}")
    page.text(f"Records of {PROJECT}, 15m").wait_for()  # the record is 3 minutes old
    browser_page.wait_for_function("() => window.location.search.includes('range=15m')")
    assert "range=15m" in browser_page.url
    page.shot("records-fitted-range")
    # a range in the URL is the user's
    page.open(f"?page=records&project={PROJECT}&range=7d")
    page.text(f"Records of {PROJECT}, 7d").wait_for()
    assert "range=7d" in browser_page.url
    assert page.errors == []


def test_the_endpoint_lists_its_exceptions_and_failed_and_slowest_requests(page: Page) -> None:
    browser_page = page.open(f"?page=endpoints&project={PROJECT}&route=/orders&range=1h")
    page.text("Failed sampled requests").wait_for()
    exceptions = browser_page.locator(".exceptions .tabulator-row")
    assert exceptions.count() == 2
    assert exceptions.first.locator("[tabulator-field='exception']").inner_text() == ERROR["type"]
    assert exceptions.first.locator("[tabulator-field='count']").inner_text() == "3"
    assert exceptions.nth(1).locator("[tabulator-field='exception']").inner_text() == "KeyError"
    # over time: one stacked series per type, the counts in the buckets they happened in
    browser_page.wait_for_function("() => window.Bokeh && window.Bokeh.documents.length > 0")
    series = browser_page.evaluate(
        """(title) => {
            for (const doc of window.Bokeh.documents) {
                for (const model of doc.all_models) {
                    if (model.title && model.title.text === title && model.renderers) {
                        const data = model.renderers[0].data_source.data;
                        const get = (name) => Array.from(data instanceof Map ? data.get(name) : data[name]);
                        const legend = model.center.find((m) => m.items).items.map((i) => i.label.value);
                        return {legend, stock: get("type_0"), key: get("type_1"), names: get("name_1")};
                    }
                }
            }
            return null;
        }""",
        "Exceptions by type, /orders",
    )
    assert series["legend"] == [ERROR["type"], "KeyError"]
    assert sum(series["stock"]) == 3 and sum(series["key"]) == 1
    assert set(series["names"]) == {"KeyError"}
    newest_bucket = max(i for i, n in enumerate(series["stock"]) if n)
    assert series["stock"][newest_bucket] == 3  # all three in the newest bucket with any
    assert max(i for i, n in enumerate(series["key"]) if n) < newest_bucket  # 40 minutes earlier
    failed = browser_page.locator(".failed .tabulator-row")
    assert failed.count() == 1
    assert failed.first.locator("[tabulator-field='error_type']").inner_text() == ERROR["type"]
    assert failed.first.locator("[tabulator-field='status_code']").inner_text() == "500"
    slowest = browser_page.locator(".slowest .tabulator-row")
    assert slowest.first.locator("[tabulator-field='trace']").inner_text() == TRACE[:12] + "…"
    browser_page.locator(".failed").scroll_into_view_if_needed()
    page.shot("endpoint-failed-requests")
    failed.first.locator("[tabulator-field='trace']").click()
    browser_page.locator(".diag.exception").wait_for()  # the trace page
    assert f"trace={TRACE}" in browser_page.url
    assert page.errors == []


def test_the_endpoint_merged_profile_opens_on_the_hot_path(page: Page) -> None:
    browser_page = page.open(f"?page=endpoints&project={PROJECT}&route=/orders&range=1h")
    page.text("Merged call tree, opened on the hot path").wait_for()
    tree = browser_page.locator(".hot-path")
    shown = tree.locator(".function").locator("visible=true")
    # from the application root; the heaviest chain open; jinja2.render closed
    assert shown.all_inner_texts() == [
        "shop.list_orders", "shop.load_order_items", "sqlalchemy.execute", "jinja2.render",
    ]  # fmt: skip
    hot = tree.locator(".hot > summary .function, .hot > .line .function")
    assert hot.all_inner_texts() == [
        "shop.list_orders",
        "shop.load_order_items",
        "sqlalchemy.execute",
    ]
    execute = tree.locator(".leaf.hot").first
    assert "32 ms" in execute.inner_text() and "52.5%" in execute.inner_text()  # 32 of 61 ms
    assert "1 library frame folded" in execute.inner_text()
    browser_page.locator(".hot-path").scroll_into_view_if_needed()
    page.shot("endpoint-hot-path")
    tree.locator("summary", has_text="jinja2.render").click()
    tree.locator(".function", has_text="shop.format_price").wait_for(state="visible")
    assert page.errors == []


def flame_figure(browser_page: Any) -> dict[str, Any]:
    """What the trace page's flame graph draws: functions, x range, axis label.

    Redrawn, the figure is a new model; the document may still hold the old
    one, so the newest (last added) figure is the one on the page.
    """
    return browser_page.evaluate(
        """() => {
            let found = null;
            for (const doc of window.Bokeh.documents) {
                for (const model of doc.all_models) {
                    if (model.title && model.title.text === "Flame graph" && model.renderers) {
                        const data = model.renderers[0].data_source.data;
                        const functions = data instanceof Map ? data.get("function") : data["function"];
                        const label = model.below[0].axis_label;
                        found = {functions: Array.from(functions), end: model.x_range.end,
                                 label: typeof label === "string" ? label : label.text};
                    }
                }
            }
            return found;
        }"""
    )


def test_the_flame_graph_opens_at_the_application_root_in_ms(page: Page) -> None:
    browser_page = open_trace(page)
    browser_page.wait_for_function("() => window.Bokeh && window.Bokeh.documents.length > 0")
    browser_page.wait_for_timeout(500)
    drawn = flame_figure(browser_page)
    assert drawn["functions"][0] == "shop.list_orders"
    assert sorted(drawn["functions"]) == sorted([
        "shop.list_orders", "shop.load_order_items", "sqlalchemy.execute",
        "sqlalchemy._execute_context", "jinja2.render", "jinja2.root_render_func",
        "shop.format_price",
    ])  # fmt: skip
    assert drawn["end"] == pytest.approx(56.0)  # shop.list_orders, in ms
    assert drawn["label"] == (
        "ms, from shop.list_orders (4 outer frames of the server and framework not drawn)"
    )
    page.text("Show all frames").scroll_into_view_if_needed()
    page.shot("trace-flame-graph")
    browser_page.locator(".show-all-frames input").check()
    deadline = time.monotonic() + 30
    while "uvicorn.run_asgi" not in flame_figure(browser_page)["functions"]:
        assert time.monotonic() < deadline, "the flame graph did not redraw every frame"
        browser_page.wait_for_timeout(100)
    every = flame_figure(browser_page)
    assert every["functions"][:5] == [
        "uvicorn.run_asgi", "starlette.__call__", "starlette.wrapped_app", "starlette.handle",
        "shop.list_orders",
    ]  # fmt: skip
    assert every["end"] == pytest.approx(61.0) and every["label"] == "ms"
    browser_page.locator(".show-all-frames").scroll_into_view_if_needed()
    page.shot("trace-flame-graph-all")
    assert page.errors == []


def test_a_trace_with_several_requests_lists_them_and_opens_each(page: Page) -> None:
    browser_page = page.open(f"?page=trace&project={PROJECT}&trace={SHARED}")
    rows = browser_page.locator(".trace-requests .tabulator-row")
    rows.first.wait_for()
    assert rows.count() == 2
    assert rows.locator("[tabulator-field='span_id']").all_inner_texts() == list(SPANS)
    assert rows.locator("[tabulator-field='path']").all_inner_texts() == ["/cart/1", "/cart/2"]
    assert page.text("2 sampled requests share this trace id").is_visible()
    page.shot("trace-requests")
    rows.nth(1).locator("[tabulator-field='path']").click()
    page.text("Call tree").wait_for()
    assert f"trace={SHARED}-{SPANS[1]}" in browser_page.url
    header = page.text(f"span {SPANS[1]}").inner_text()
    assert f"trace {SHARED}" in header and "parent span c0ffee00c0ffee00" in header
    assert page.text("GET /cart/2").is_visible()
    # The other request of the trace is listed beside the open one, one click away.
    assert page.text("this is span").is_visible()
    siblings = browser_page.locator(".trace-requests .tabulator-row")
    assert siblings.count() == 2
    siblings.nth(0).locator("[tabulator-field='path']").click()
    browser_page.wait_for_url(f"**trace={SHARED}-{SPANS[0]}**")
    page.text(f"span {SPANS[0]}").wait_for()
    assert page.text("GET /cart/1").is_visible()
    assert page.errors == []


def test_a_record_key_in_the_url_opens_that_request(page: Page) -> None:
    browser_page = page.open(f"?page=trace&project={PROJECT}&trace={SHARED}-{SPANS[0]}")
    page.text("Call tree").wait_for()
    assert page.text("GET /cart/1").is_visible()
    assert "parent span c0ffee00c0ffee00" in page.text(f"span {SPANS[0]}").inner_text()
    assert "trace=" + SHARED + "-" + SPANS[0] in browser_page.url
    assert page.errors == []
