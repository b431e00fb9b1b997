"""Each report notebook through papermill on known data: numbers in the notebook and the HTML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pystrument_lab.loaders import Lab
from pystrument_lab.markup import markdown_code as code
from pystrument_lab.reports import list_reports, run_report
from pystrument_lab.store import Store, utcnow
from pystrument_lab.widgets.timefmt import format_seconds
from tests.integration.reports.conftest import SEARCH
from tests.integration.reports.helpers import error_outputs, notebook_text

pytestmark = pytest.mark.slow


def _completed(report: dict[str, Any]) -> tuple[str, str]:
    assert report["status"] == "completed", report.get("error")
    assert report["error"] is None
    assert report["duration"] > 0
    notebook, page = Path(report["paths"]["notebook"]), Path(report["paths"]["html"])
    assert notebook.exists() and page.exists()
    assert not list(notebook.parent.glob(".*partial*"))  # nothing half-written left behind
    assert not error_outputs(notebook)
    return notebook_text(notebook), page.read_text(encoding="utf-8")


def _completed_analysis(store: Store, project_key: str) -> None:
    store.analyses.insert_one(
        {
            "project_key": project_key,
            "route": SEARCH,
            "trace_id": None,
            "status": "completed",
            "created_at": utcnow(),
            "analysis_results": {
                "performance_score": 42,
                "bottleneck_analysis": [
                    {"type": "database", "severity": "high", "function": "run_query",
                     "description": "run_query takes 84% of the request"}
                ],
                "optimization_suggestions": [{"title": "Index the search column"}],
            },
        }
    )  # fmt: skip


def test_summary_report(store: Store, shop: dict[str, Any], tmp_path: Path) -> None:
    _completed_analysis(store, shop["project_key"])
    report = run_report(shop["name"], "summary", "-1d", "now", store=store, home=tmp_path)

    assert report["project_key"] == shop["project_key"]
    assert report["project_name"] == shop["name"]
    assert report["report_type"] == "summary" and report["trigger"] == "manual"
    assert report["params"]["project_key"] == shop["project_key"]
    assert "mongodb_url" not in report["params"]
    folder = tmp_path.resolve() / "reports" / shop["project_key"] / report["id"]
    assert Path(report["paths"]["html"]).parent == folder
    text, page = _completed(report)

    # App-sent names reach the Markdown as escaped inline code (pystrument_lab.markup).
    # The expected p95 is the library's own answer for the report's range.
    endpoints = Lab(store).endpoints(
        shop["project_key"], since=report["start_date"], until=report["end_date"]
    )
    search = endpoints.filter(pl.col("route") == SEARCH).row(0, named=True)
    assert search["count"] == 80
    assert abs(search["p95"] - 0.8) <= 0.8 * 0.044  # 40 requests at 100 ms, 40 at 800 ms
    p95 = format_seconds(search["p95"])
    assert f"Slowest endpoint: {code('GET ' + SEARCH)} — p95 {p95}** over 80 requests" in text
    assert f"<code>GET {SEARCH}</code> — p95 {p95}" in page

    # Key figures: 200 requests, 5 errors (2.5 %), 15 sampled requests.
    for figure in (">200<", ">5<", ">2.5%<", ">15<"):
        assert figure in text and figure in page
    # Error hot spot and the failing sampled requests.
    assert f"Most errors: {code('POST /api/orders')} — 5 failed requests (25.0%)" in text
    assert "<code>POST /api/orders</code> — 5 failed requests (25.0%)" in page
    # Top functions of the slowest endpoint's merged tree: run_query, 380 ms per request.
    assert f"{code('GET /api/search')} (10 sampled requests)" in text
    assert ">run_query<" in page and ">380 ms<" in page
    # Analysis highlights: the completed analysis of the project.
    assert ">run_query takes 84% of the request<" in page and ">Index the search column<" in page
    assert ">42<" in page
    # The how-to note for notebook users stays out of the HTML.
    assert (
        "notebook-only" not in page
        and "notebook-only" in Path(report["paths"]["notebook"]).read_text()
    )
    # A report for a reader: code hidden, charts drawn, no error.
    assert "lab.project_key(" not in page and "import polars" not in page
    assert "Bokeh" in page


def test_regression_report(store: Store, shop: dict[str, Any], tmp_path: Path) -> None:
    report = run_report(shop["project_key"], "regression", "-1d", "now", store=store, home=tmp_path)
    text, page = _completed(report)

    assert "**1.0 → 1.1**" in text
    assert "1 of 3 endpoints regressed from 1.0 to 1.1." in text
    assert "1 of 3 endpoints regressed from 1.0 to 1.1." in page
    line = f"{code('GET ' + SEARCH)}: p95 100 ms → 800 ms (+700%), p50 100 ms → 800 ms (+700%)"
    assert line in text
    assert "p95 100 ms → 800 ms (+700%)" in page
    assert (
        f"Most added time: **{code('run_query')}** (shop/search.py:30), "
        "self time per request 60 ms → 700 ms (+640 ms)."
    ) in text
    assert "<code>run_query</code>" in page
    # /api/users did not move, /api/orders is new in 1.1: neither is broken down.
    assert f"### {code('GET /api/users/{id}')}" not in text
    assert f"### {code('POST /api/orders')}" not in text
    assert "lab.compare_versions(" not in page


def test_failing_report_is_failed_with_the_cells_error(
    store: Store, collector: Any, tmp_path: Path
) -> None:
    """Through the CLI: a report on a project that does not exist fails, with its cause."""
    env = {
        **os.environ,
        "PYSTRUMENT_MONGODB_URL": store.url,
        "PYSTRUMENT_DATABASE": store.db.name,
        "PYSTRUMENT_HOME": str(tmp_path),
    }
    command = [sys.executable, "-m", "pystrument_lab.cli", "reports"]
    done = subprocess.run(
        [*command, "run", "--project", "no-such-project", "--template", "summary"],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed: ProjectNotFound in cell" in done.stderr

    (report,) = list_reports(store, project="no-such-project")
    assert report["status"] == "failed"
    assert report["error"]["ename"] == "ProjectNotFound"
    assert "no-such-project" in report["error"]["evalue"]
    assert isinstance(report["error"]["cell_index"], int)
    assert set(report["paths"]) == {"failed_notebook"}  # kept for debugging; no HTML
    folder = Path(report["paths"]["failed_notebook"]).parent
    assert sorted(p.name for p in folder.iterdir()) == ["summary.failed.ipynb"]
    assert report["finished_at"] >= report["created_at"]

    listed = subprocess.run(
        [*command, "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)
    assert item["id"] == report["id"] and item["status"] == "failed"


def test_reports_on_a_project_without_data_say_so(store: Store, tmp_path: Path) -> None:
    """The scheduled jobs run for every active project, idle ones included."""
    store.create_project("quiet", framework="flask")
    summary = run_report("quiet", "summary", "-1d", "now", store=store, home=tmp_path)
    text, _ = _completed(summary)
    assert "No requests were recorded in this period." in text
    assert "No sampled call trees in this period." in text
    regression = run_report("quiet", "regression", "-7d", "now", store=store, home=tmp_path)
    text, page = _completed(regression)
    assert "Fewer than two versions were seen in this period: nothing to compare." in page
