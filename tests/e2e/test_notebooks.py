"""Every guide notebook in ``notebooks/`` executed by papermill against the demo shop's data.

The demo runs once for the module (through the real collector into a store
database of its own); each notebook then runs in a fresh kernel with the
store passed as papermill parameters. A new notebook in ``notebooks/`` is
picked up by the glob and must at least run without an error; the ones below
also have their outputs checked. ``notebooks/reports/`` holds report
templates, tested with the reports.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

from pystrument_lab.demo.traffic import ENDPOINTS
from pystrument_lab.reports import ensure_kernel
from pystrument_lab.store import Store
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.e2e

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
GUIDES = sorted(NOTEBOOKS.glob("*.ipynb"))
REQUESTS = 40


@pytest.fixture(scope="module")
def demo(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from pystrument_lab.demo import run_demo

    database = "test_notebooks_" + uuid.uuid4().hex[:12]
    store = Store(mongo_url, database=database)
    store.ensure_indexes()
    collector = CollectorProcess(mongo_url, database, tmp_path_factory.mktemp("notebooks-home"))
    collector.start()
    try:
        result = run_demo(collector.url, requests_per_version=REQUESTS, store=store)
        yield {**result, "store": store, "collector": collector}
    finally:
        collector.stop()
        store.client.drop_database(database)
        store.close()


class Outputs:
    """The outputs of an executed notebook, as the text a reader sees."""

    def __init__(self, notebook: nbformat.NotebookNode) -> None:
        self.cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        self.outputs = [output for cell in self.cells for output in cell.outputs]

    @property
    def stdout(self) -> str:
        return "".join(
            o.text for o in self.outputs if o.output_type == "stream" and o.name == "stdout"
        )

    def data(self, mime: str) -> list[str]:
        return [
            o.data[mime] if isinstance(o.data[mime], str) else str(o.data[mime])
            for o in self.outputs
            if o.output_type in ("execute_result", "display_data") and mime in o.data
        ]

    def html(self) -> str:
        return "\n".join(self.data("text/html"))

    @property
    def errors(self) -> list[str]:
        return [f"{o.ename}: {o.evalue}" for o in self.outputs if o.output_type == "error"]


def _quickstart(out: Outputs, demo: dict[str, Any]) -> None:
    assert demo["project"] in out.html()  # the projects table
    # the endpoints table: every endpoint of the demo, every request counted
    assert f"{len(ENDPOINTS)} endpoints served {REQUESTS * 2} requests" in out.stdout
    assert "/api/search" in out.html()
    assert "Slowest endpoint: GET /api/" in out.stdout
    assert out.data("application/vnd.jupyter.widget-view+json")  # the call tree widget
    assert any("<iframe srcdoc=" in html for html in out.data("text/html"))  # the flame graph
    assert "cdn.bokeh.org" not in out.html()  # ... with its BokehJS inside
    assert "pyinstrument view written to slowest-request.html" in out.stdout


def _explore(out: Outputs, demo: dict[str, Any]) -> None:
    assert f"{REQUESTS * 2} requests in" in out.stdout  # the trend's total: every request
    assert len(out.data("application/vnd.bokehjs_exec.v0+json")) == 3  # latency, traffic, p95 bars
    # BokehJS itself is in the notebook (output_notebook with inline resources): the charts
    # draw in a browser without internet access, and nothing points at the CDN.
    scripts = out.data("application/javascript")
    assert any(len(script) > 500_000 and "Bokeh" in script for script in scripts)
    assert not any("cdn.bokeh.org" in text for text in scripts + out.data("text/html"))
    assert "Most queries per request: /api/orders" in out.stdout  # the planted N+1
    assert "load_order_items" in out.stdout  # ... and the function issuing the queries
    assert (
        "Most self time in application code: compute_report_statistics" in out.stdout
    )  # the hot loop


def _compare(out: Outputs, demo: dict[str, Any]) -> None:
    assert "Comparing 1.0 (baseline) with 1.1" in out.stdout
    assert "Regressed: GET /api/search" in out.stdout
    assert "/api/search got slower in rank_search_results" in out.stdout
    assert "rank_search_results" in "\n".join(out.data("text/plain"))  # the diff flame graph's text


def _analysis(out: Outputs, demo: dict[str, Any]) -> None:
    assert "/api/report: score" in out.stdout
    assert "computation in compute_report_statistics" in out.stdout
    assert "computation in rank_search_results" in out.stdout
    assert "pystrument-analysis" in out.html()  # the rendered report


CHECKS: dict[str, Callable[[Outputs, dict[str, Any]], None]] = {
    "01_quickstart.ipynb": _quickstart,
    "02_explore_endpoints.ipynb": _explore,
    "03_compare_versions.ipynb": _compare,
    "04_analysis.ipynb": _analysis,
}


def test_notebooks_are_stored_without_outputs() -> None:
    assert GUIDES, "no notebooks found"
    for path in GUIDES:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells), (
            path.name
        )
        assert all(
            not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"
        ), path.name


def execute(path: Path, demo: dict[str, Any], folder: Path) -> Path:
    """``path`` run by papermill against the demo's store; the executed copy in ``folder``."""
    store: Store = demo["store"]
    executed = folder / path.name
    papermill.execute_notebook(
        str(path),
        str(executed),
        parameters={
            "mongodb_url": store.url,
            "database": store.db.name,
            "project": demo["project"],
            "api_endpoint": demo["collector"].url,
        },
        kernel_name=ensure_kernel(),
        cwd=str(folder),
        progress_bar=False,
        execution_timeout=120,
    )
    return executed


@pytest.mark.parametrize("path", GUIDES, ids=[path.name for path in GUIDES])
def test_notebook_runs_against_the_demo(
    path: Path, demo: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYSTRUMENT_BOKEH_RESOURCES", raising=False)  # the default: inline
    executed = execute(path, demo, tmp_path)
    out = Outputs(nbformat.read(executed, as_version=4))
    assert out.errors == []
    check = CHECKS.get(path.name)
    if check is not None:
        check(out, demo)


def test_the_charts_of_an_executed_notebook_draw_without_network(
    demo: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executed explore notebook, as HTML, in Chromium with every network request refused."""
    from nbconvert import HTMLExporter

    from tests.utils.browser import ARTIFACTS, chromium

    pytest.importorskip("playwright.sync_api")
    monkeypatch.delenv("PYSTRUMENT_BOKEH_RESOURCES", raising=False)
    executed = execute(NOTEBOOKS / "02_explore_endpoints.ipynb", demo, tmp_path)
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    page_path = tmp_path / "explore.html"
    page_path.write_text(body, encoding="utf-8")
    refused: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", offline)
        page.goto(page_path.as_uri())
        page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length >= 3"
            " && document.querySelectorAll('.bk-Figure, .bk-Column, .bk-Row').length > 0"
        )
        page.wait_for_timeout(1000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "notebook-explore-offline.png"), full_page=True)
        titles = page.evaluate(
            "() => Bokeh.documents.flatMap(d => [...d.all_models])"
            ".filter(m => m.title && m.title.text).map(m => m.title.text)"
        )
    assert len(titles) >= 3, titles
    assert not any("bokeh" in url for url in refused), refused  # nothing of BokehJS was asked for
