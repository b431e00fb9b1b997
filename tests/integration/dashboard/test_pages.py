"""Pages driven through their state and widgets, over a seeded store."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import panel as pn

from panel_apps.analysis import AnalysisPage
from panel_apps.app import Dashboard
from panel_apps.endpoints import EndpointsPage
from panel_apps.overview import OverviewPage, breaches
from panel_apps.projects import ProjectsPage
from panel_apps.records import RecordsPage
from panel_apps.reports import ReportsPage
from panel_apps.state import AppState
from panel_apps.trace import TracePage, call_tree_rows, metrics_table
from panel_apps.versions import VersionsPage
from tests.integration.dashboard.conftest import SEARCH, USER


def kinds(layout: Any) -> list[str]:
    return [type(item).__name__ for item in layout.objects]


def click(page: Any, row: int) -> None:
    page._clicked(SimpleNamespace(row=row))


def test_overview_marks_projects_breaching_thresholds(app_state: AppState, shop: dict) -> None:
    page = OverviewPage(app_state)
    [entry] = page.load()
    assert entry["summary"]["count"] == 801 and entry["alerts"] == []
    app_state.lab.store.update_project(
        shop["project_key"], {"config.alert_threshold.response_time": 0.1}
    )
    app_state.page = "overview"
    app_state.time_range = "24h"  # the visible page reloads on a state change
    assert "breaching alert thresholds" in page.body.objects[0].object
    card = page.body.objects[1].objects[0]
    assert card.title.startswith("⚠") and "p95 1" in card.objects[0].object


def test_breaches_compares_p95_and_error_rate_with_thresholds() -> None:
    project = {"config": {"alert_threshold": {"response_time": 1.0, "error_rate": 0.05}}}
    assert breaches(project, {"count": 10, "p95": 0.5, "error_rate": 0.01}) == []
    found = breaches(project, {"count": 10, "p95": 1.5, "error_rate": 0.2})
    assert found == ["p95 1,500 ms above 1,000 ms", "error rate 20.0% above 5.0%"]


def test_overview_empty_state_explains_what_to_do(store: Any) -> None:
    from pystrument_lab.loaders import Lab

    page = OverviewPage(AppState(Lab(store)))
    page.refresh()
    assert "No projects yet" in page.body.objects[0].objects[0].object


def test_projects_create_shows_key_and_snippets(app_state: AppState) -> None:
    page = ProjectsPage(app_state)
    app_state.page = "projects"
    page.new_name.value = "billing"
    page.new_framework.value = "django"
    project = page.create()
    assert project is not None and project["project_key"].startswith("pk_")
    shown = [obj for obj in page.created.objects if isinstance(obj, pn.widgets.TextInput)]
    assert shown[0].value == project["project_key"]
    tabs = page.created.objects[-1]
    assert tabs._names[0] == "Django" and project["project_key"] in tabs.objects[0].value
    launcher = tabs.objects[-1].value
    assert tabs._names[-1] == "No code change" and "pystrument-run gunicorn mysite.wsgi" in launcher
    assert f"PERFORMANCE_MONITOR_PROJECT_KEY={project['project_key']}" in launcher
    assert app_state.project == "billing"
    assert "billing" in list(page.listing.value["name"])


def test_projects_edit_and_archive(app_state: AppState, shop: dict) -> None:
    page = ProjectsPage(app_state)
    app_state.page = "projects"
    page.activate()
    page.sampling_rate.value = 0.5
    page.enabled.value = False
    page.response_time.value = 0.25
    page.error_rate.value = 0.02
    page.save()
    config = app_state.lab.store.get_project(shop["project_key"])["config"]
    # The embedded server hands a $set boolean back as 0/1, so compare truthiness.
    assert config["sampling_rate"] == 0.5 and not config["enabled"]
    assert (
        config["alert_threshold"]["response_time"] == 0.25
        and config["alert_threshold"]["error_rate"] == 0.02
    )
    page.archive()
    assert app_state.lab.store.get_project(shop["project_key"])["status"] == "archived"


def test_endpoints_table_trends_and_merged_tree(app_state: AppState) -> None:
    page = EndpointsPage(app_state)
    app_state.page = "endpoints"
    page.activate()
    expected = app_state.lab.endpoints("shop", time_range="6h")
    assert list(page.listing.value["route"]) == expected["route"].to_list()
    assert list(page.listing.value["p95"]) == [
        round(v * 1000, 2) for v in expected["p95"].to_list()
    ]
    assert page.detail.objects == []
    row = list(page.listing.value["route"]).index(SEARCH)
    click(page, row)
    assert app_state.route == SEARCH
    flame, title, hot_path = page.detail.objects[2].objects
    assert isinstance(flame, pn.pane.Bokeh)
    source = flame.object.renderers[0].data_source
    assert "rank_results" in source.data["function"]
    assert "opened on the hot path" in title.object
    assert "<code class='function'>rank_results</code>" in hot_path.object
    # below it, the route's slowest sampled requests, slowest first, each opening its trace
    [slowest] = [o for o in page.detail.objects if "slowest" in getattr(o, "css_classes", [])]
    durations = list(slowest.value["total_duration"])
    assert len(durations) == 10 and durations == sorted(durations, reverse=True)
    stored = app_state.lab.records("shop", route=SEARCH, time_range="6h")["total_duration"]
    assert durations[0] == round(stored.max() * 1000, 2)
    page._opener(slowest)(SimpleNamespace(row=0))
    assert app_state.page == "trace" and app_state.trace == slowest.value.iloc[0]["trace_id"]


def test_records_filters_and_opens_trace(app_state: AppState) -> None:
    page = RecordsPage(app_state)
    app_state.page = "records"
    page.activate()
    assert len(page.listing.value) == 40
    page.min_ms.value = 100.0
    slow = page.listing.value
    assert (
        len(slow) == 10 and set(slow["route"]) == {SEARCH} and set(slow["app_version"]) == {"1.1"}
    )
    page.min_ms.value = 0.0
    page.route.value = USER
    assert app_state.route == USER and set(page.listing.value["route"]) == {USER}
    click(page, 0)
    assert app_state.page == "trace" and app_state.trace == page.listing.value.iloc[0]["trace_id"]


def test_trace_detail_shows_metrics_tree_and_flame_graph(app_state: AppState) -> None:
    trace = app_state.lab.records("shop", route=SEARCH, app_version="1.1", limit=1)["trace_id"][0]
    page = TracePage(app_state)
    app_state.open_trace(trace)
    page.activate()
    assert page.record is not None and page.record.trace_id == trace
    assert metrics_table(page.record)["total duration"] == page.record.data["total_duration"]
    # opened at the application's outermost frame; the framework's dispatch is one switch away
    rows = call_tree_rows(page.record)
    assert [r["function"].strip("\u2003") for r in rows] == [
        "search",
        "fetch_products",
        "rank_results",
    ]
    every = call_tree_rows(page.record, show_all=True)
    assert [r["function"].strip("\u2003") for r in every][:2] == ["dispatch", "search"]
    graphs = [o for o in page.body.objects if isinstance(o, pn.pane.Bokeh)]
    drawn = graphs[0].object.renderers[0].data_source.data["function"]
    assert list(drawn) == ["search", "fetch_products", "rank_results"]  # from the application root
    [switch] = [o for o in page.body.objects if "show-all-frames" in getattr(o, "css_classes", [])]
    switch.value = True
    drawn = graphs[0].object.renderers[0].data_source.data["function"]
    assert list(drawn) == ["dispatch", "search", "fetch_products", "rank_results"]
    links = page.body.objects[1]
    assert any(isinstance(o, pn.widgets.FileDownload) for o in links.objects)


def test_versions_page_shows_the_regression_and_diff(app_state: AppState) -> None:
    page = VersionsPage(app_state)
    app_state.page = "versions"
    page.activate()
    assert (page.version_a.value, page.version_b.value) == ("1.0", "1.1")
    flagged = page.comparison.filter(page.comparison["regression"])["route"].to_list()
    assert flagged == [SEARCH] and page.route.value == SEARCH
    verdict = page.body.objects[2]
    assert verdict.alert_type == "danger" and SEARCH in verdict.object
    diff = page.body.objects[-1]
    graph = next(o for o in diff.objects if isinstance(o, pn.pane.Bokeh))
    data = graph.object.renderers[0].data_source.data
    rank = data["function"].index("rank_results")
    assert data["self_delta"][rank] == max(data["self_delta"])


def test_analysis_of_a_record_completes_with_its_bottleneck(app_state: AppState) -> None:
    trace = app_state.lab.records("shop", route=SEARCH, app_version="1.1", limit=1)["trace_id"][0]
    page = AnalysisPage(app_state)
    app_state.page = "analysis"
    page.activate()
    page.trace.value = trace
    run = page.start(background=False)
    assert run is not None and run.status == "completed", run.error
    assert "rank_results" in page.result.object
    assert page.status.object.startswith("**completed**")
    assert list(page.history.value["trace_id"]) == [trace]


def test_analysis_request_from_another_page_starts_it(app_state: AppState) -> None:
    page = AnalysisPage(app_state)
    page.start = lambda **_: None  # type: ignore[method-assign]
    app_state.request_analysis("endpoint", SEARCH)
    page.activate()
    assert page.kind.value == "endpoint" and page.route.value == SEARCH


def test_reports_page_lists_reports(app_state: AppState, shop: dict) -> None:
    from pystrument_lab.analysis import jobs

    jobs.create_job(app_state.lab.store, shop["project_key"], trace_id="t-1")
    jobs.create_job(app_state.lab.store, shop["project_key"], trace_id="t-2", batch_id="b")
    page = ReportsPage(app_state)
    app_state.page = "reports"
    page.activate()
    texts = [getattr(o, "object", "") for o in page.body.objects]
    assert "No report has run yet." in texts
    assert "summary" in page.template.options and page.template.value == "summary"
    [work] = [text for text in texts if "### Background work" in text]
    assert "Schedulers alive: 0 — start one with `pystrument scheduler`" in work
    assert "| analysis | 1 | 0 | 0 | 0 |" in work and "| batch | 1 | 0 | 0 | 0 |" in work
    assert "Running now: nothing" in work


def test_dashboard_navigation_follows_state(app_state: AppState) -> None:
    dashboard = Dashboard(app_state.lab)
    shown = lambda: dashboard.main.objects[0].objects[1]  # noqa: E731 - the page's body
    assert shown() is dashboard.pages["overview"].body
    dashboard.state.open_project("shop")
    assert shown() is dashboard.pages["endpoints"].body
    assert dashboard.project.value == "shop" and dashboard.nav.value == "endpoints"
    dashboard.time_range.value = "1h"
    assert dashboard.state.time_range == "1h"
    assert (
        dashboard.state.link(route=SEARCH)
        == "?page=endpoints&project=shop&route=%2Fapi%2Fsearch&range=1h"
    )


def test_report_rows_link_finished_reports_only() -> None:
    from panel_apps.reports import report_rows

    rows = report_rows(
        [
            {
                "id": "a1",
                "template": "summary",
                "status": "completed",
                "paths": {"html": "/r/a1.html"},
            },
            {
                "id": "b2",
                "template": "summary",
                "status": "failed",
                "error": {"message": "cell 3 raised"},
            },
        ]
    )
    assert rows[0]["html"] == "<a href='report?id=a1' target='_blank'>open</a>"
    assert rows[1]["html"] == "" and rows[1]["error"] == "cell 3 raised"


def test_background_work_lists_the_schedule_and_running_work() -> None:
    from datetime import datetime, timezone

    from panel_apps.reports import background_work

    at = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
    overview = {
        "schedulers": [{"name": "host:12", "alive": True}, {"name": "old:3", "alive": False}],
        "jobs": [
            {"name": "cleanup", "cron": "0 2 * * *", "template": None, "task": "cleanup",
             "next_run": at, "last_fire": None, "last_status": None, "running": False},
            {"name": "daily", "cron": "0 6 * * *", "template": "summary", "task": "report",
             "next_run": at, "last_fire": at, "last_status": "completed", "running": True},
        ],
        "running": {"jobs": [{"job": "daily"}],
                    "reports": [{"template": "summary", "project_name": "shop", "project_key": "k"}]},
        "analysis": {"queues": {"analysis": {"pending": 2, "running": 1, "completed": 7, "failed": 1}},
                     "workers": {"w1": 1}},
    }  # fmt: skip
    text = background_work(overview)
    assert "Schedulers alive: 1 (host:12)" in text
    assert (
        "| cleanup | <code>0 2 \\* \\* \\*</code> | cleanup | 2026-11-28 02:00 | - | never run |"
        in text
    )
    assert (
        "| daily | <code>0 6 \\* \\* \\*</code> | summary | 2026-11-28 02:00 | 2026-11-28 02:00 | running |"
        in text
    )
    assert "Running now: job daily, report summary for shop" in text
    assert "| analysis | 2 | 1 | 7 | 1 |" in text and "Workers busy: w1" in text


def test_the_default_range_is_the_smallest_that_holds_the_recent_data(store: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from panel_apps.state import fitted_range
    from pystrument_lab.loaders import Lab
    from tests.utils.factories import make_record

    lab = Lab(store)
    now = datetime.now(timezone.utc)
    ages = {"fresh": [2, 9], "hourly": [5, 40], "daily": [30, 300], "weekly": [600, 3000]}
    for name, minutes in {**ages, "old": [20_000]}.items():
        key = store.create_project(name, framework="flask")["project_key"]
        records = [make_record(timestamp=now - timedelta(minutes=m)) for m in minutes]
        for record in records:
            record["timestamp"] = datetime.fromisoformat(record["timestamp"])
        store.insert_records(key, records)
    assert fitted_range(lab, ["fresh"]) == "15m"
    assert fitted_range(lab, ["hourly"]) == "1h"
    assert fitted_range(lab, ["daily"]) == "24h"
    assert fitted_range(lab, ["weekly"]) == "7d"
    assert fitted_range(lab, ["old"]) == "24h"  # nothing this week: the usual default
    assert fitted_range(lab, ["fresh", "daily"]) == "24h"  # the overview holds every project
    assert fitted_range(lab, []) == "24h"


def test_the_dashboard_opens_on_the_fitted_range_unless_the_url_names_one(store: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from pystrument_lab.loaders import Lab
    from tests.utils.factories import make_record

    key = store.create_project("fresh", framework="flask")["project_key"]
    record = make_record()
    record["timestamp"] = datetime.now(timezone.utc) - timedelta(minutes=4)
    store.insert_records(key, [record])
    older = store.create_project("older", framework="flask")["project_key"]
    record = make_record()
    record["timestamp"] = datetime.now(timezone.utc) - timedelta(hours=5)
    store.insert_records(older, [record])
    dashboard = Dashboard(Lab(store))
    assert dashboard.state.time_range == "24h"  # the overview: every project's data
    dashboard.state.project = "fresh"
    assert dashboard.state.time_range == "15m" and dashboard.time_range.value == "15m"
    dashboard.time_range.value = "7d"  # the user's choice stays
    dashboard.state.project = ""
    dashboard.state.project = "fresh"
    assert dashboard.state.time_range == "7d"
